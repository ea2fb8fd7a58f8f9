#!/usr/bin/env bash
# Rebuild, from nothing, the five corpora and the encoder cache that align_context.yaml (the context projector,
# session 11) and the longer alignment after it train on: 45,155 utterances by the training voices, their TSIT_s
# transcripts, and the dev and stage-2 targets of docs/results/hear's "Reproduce". Speech is skipped where its
# manifest exists and `azeros generate` continues its own outputs, so an interrupted rebuild goes on where it
# stopped. Several hours on 2 cores (the LLM's SIFT answers and the Whisper cache are most of it). From the
# repository root:
#
#     nice bash docs/results/hear/rebuild_align_data.sh
set -euo pipefail
H=exp/hear
step() {  # step OUTPUT COMMAND...: run COMMAND unless OUTPUT exists
  local out=$1; shift
  if [ -e "$out" ]; then echo "== have $out"; return; fi
  echo "== $(date +%T) $*"; "$@"
}
generate() {  # always run: a finished output is read and nothing is added; an interrupted one is continued
  echo "== $(date +%T) azeros generate $*"; azeros generate "$@"
}
step $H/corpus/cuts_train.jsonl.gz azeros corpus synth --out $H/corpus --num 13000
generate $H/corpus/cuts_train.jsonl.gz out=$H/targets "modes=[tsit_s]"
generate $H/corpus/cuts_dev.jsonl.gz out=$H/targets \
  "modes=[tsit_s,sift_s]" limit=96 max_new_tokens=24
generate $H/corpus/cuts_train.jsonl.gz out=$H/targets \
  "modes=[sift_s]" limit=4000 max_new_tokens=24
generate $H/corpus/cuts_train.jsonl.gz out=$H/targets \
  "modes=[sift_sp,sit_sp]" limit=400 max_new_tokens=32
generate $H/corpus/cuts_dev.jsonl.gz out=$H/targets \
  "modes=[sift_sp,sit_sp]" limit=32 max_new_tokens=32
# the sentences the LLM wrote in those answers, spoken
step $H/text2/a/cuts_train.jsonl.gz python docs/results/hear/speak_llm_sentences.py $H/text2/a \
  $H/targets/cuts_train/sift_s_0.jsonl.gz $H/targets/cuts_train/sift_sp_0.jsonl.gz $H/targets/cuts_train/sit_sp_0.jsonl.gz
# WordNet: 8,000 common-token examples; the common-token examples and definitions left; the rare-token examples
if [ ! -e $H/wordnet.jsonl.gz ]; then
  python docs/results/hear/wordnet_sentences.py 8000 16000 $H/wordnet.jsonl && gzip $H/wordnet.jsonl
fi
step $H/wordnet/speech/cuts_train.jsonl.gz python docs/results/hear/speak_llm_sentences.py $H/wordnet/speech $H/wordnet.jsonl.gz
step $H/glosses/cuts_train.jsonl.gz python docs/results/hear/speak_glosses.py common $H/glosses 8000 8000
step $H/wnrare/cuts_train.jsonl.gz python docs/results/hear/speak_glosses.py rare $H/wnrare
generate $H/text2/a/cuts_train.jsonl.gz \
  out=$H/text2/a_targets "modes=[tsit_s]"
for corpus in wordnet glosses wnrare; do
  source=$H/$corpus/cuts_train.jsonl.gz
  [ $corpus = wordnet ] && source=$H/wordnet/speech/cuts_train.jsonl.gz
  generate $source out=$H/$corpus/targets "modes=[tsit_s]"
done
echo "== $(date +%T) azeros cache docs/results/hear/align_context.yaml"
azeros cache docs/results/hear/align_context.yaml
echo "== $(date +%T) done"

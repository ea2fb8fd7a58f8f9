#!/usr/bin/env bash
# Rebuild, from nothing, the five corpora and the encoder cache that align_context.yaml (the context projector,
# session 11) and the longer alignment after it train on: 45,155 utterances by the training voices, their TSIT_s
# transcripts, and the dev and stage-2 targets of docs/results/hear's "Reproduce". Each step is skipped when its
# output exists, so an interrupted rebuild goes on where it stopped. Several hours on 2 cores (the LLM's SIFT
# answers and the Whisper cache are most of it). Run from the repository root:
#
#     nice bash docs/results/hear/rebuild_align_data.sh
set -euo pipefail
H=exp/hear
step() {  # step OUTPUT COMMAND...: run COMMAND unless OUTPUT exists
  local out=$1; shift
  if [ -e "$out" ]; then echo "== have $out"; return; fi
  echo "== $(date +%T) $*"; "$@"
}
step $H/corpus/cuts_train.jsonl.gz azeros corpus synth --out $H/corpus --num 13000
step $H/targets/cuts_train/tsit_s_0.jsonl.gz azeros generate $H/corpus/cuts_train.jsonl.gz out=$H/targets "modes=[tsit_s]"
step $H/targets/cuts_dev/sift_s_0.jsonl.gz azeros generate $H/corpus/cuts_dev.jsonl.gz out=$H/targets \
  "modes=[tsit_s,sift_s]" limit=96 max_new_tokens=24
step $H/targets/cuts_train/sift_s_0.jsonl.gz azeros generate $H/corpus/cuts_train.jsonl.gz out=$H/targets \
  "modes=[sift_s]" limit=4000 max_new_tokens=24
step $H/targets/cuts_train/sit_sp_0.jsonl.gz azeros generate $H/corpus/cuts_train.jsonl.gz out=$H/targets \
  "modes=[sift_sp,sit_sp]" limit=400 max_new_tokens=32
step $H/targets/cuts_dev/sit_sp_0.jsonl.gz azeros generate $H/corpus/cuts_dev.jsonl.gz out=$H/targets \
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
step $H/text2/a_targets/cuts_train/tsit_s_0.jsonl.gz azeros generate $H/text2/a/cuts_train.jsonl.gz \
  out=$H/text2/a_targets "modes=[tsit_s]"
for corpus in wordnet glosses wnrare; do
  source=$H/$corpus/cuts_train.jsonl.gz
  [ $corpus = wordnet ] && source=$H/wordnet/speech/cuts_train.jsonl.gz
  step $H/$corpus/targets/cuts_train/tsit_s_0.jsonl.gz azeros generate $source out=$H/$corpus/targets "modes=[tsit_s]"
done
echo "== $(date +%T) azeros cache docs/results/hear/align_context.yaml"
azeros cache docs/results/hear/align_context.yaml
echo "== $(date +%T) done"

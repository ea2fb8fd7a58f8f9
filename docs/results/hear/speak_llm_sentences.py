"""Speak sentences the frozen LLM wrote (its SIFT answers), or word sequences, with the training voices.

The vocabulary experiment of docs/results/hear ("What more data and more words buy"): each answer of the given
target manifests is split into sentences; those of 3-20 plain words, not a held-out, dev or test text, are
spoken by the corpus's training voices (seeded) into OUT/wavs and OUT/cuts_train.jsonl.gz. OUT "-" only counts.

    python docs/results/hear/speak_llm_sentences.py exp/hear/text2/a exp/hear/targets/cuts_train/sift_s_0.jsonl.gz \
        exp/hear/targets/cuts_train/sift_sp_0.jsonl.gz exp/hear/targets/cuts_train/sit_sp_0.jsonl.gz
    python docs/results/hear/speak_llm_sentences.py exp/hear/text2/b exp/hear/text2/words.jsonl.gz
"""
import gzip
import json
import random
import re
import sys
from pathlib import Path

from lhotse import CutSet

from azeros.data import read_cuts
from azeros.data.corpus import plan_utterance, speak_plan
from azeros.data.heldout import HELD_OUT_TEXTS
from azeros.text import normalize_text


def responses(path: str):
    """The answers of a target manifest (a truncated gzip is read up to where it breaks)."""
    with gzip.open(path, "rt") as handle:
        try:
            for line in handle:
                yield json.loads(line)["supervisions"][0]["custom"]["response"]
        except EOFError:
            return


out, sources = Path(sys.argv[1]), sys.argv[2:]
reserved = {normalize_text(text) for text in HELD_OUT_TEXTS}
for split in ("dev", "test"):
    reserved.update(normalize_text(cut.supervisions[0].text) for cut in read_cuts(f"exp/hear/corpus/cuts_{split}.jsonl.gz"))
sentences, seen = [], set()
for source in sources:
    for response in responses(source):
        for sentence in re.split(r"(?<=[.!?])\s+", response.replace("\n", " ")):
            text = sentence.strip().lower()
            key = normalize_text(text)
            if (re.fullmatch(r"[a-z][a-z ,'\-]*[.?!]", text) and 3 <= len(text.split()) <= 20
                    and key not in seen and key not in reserved):
                seen.add(key)
                sentences.append(text)
print(len(sentences), "sentences,", len({w for s in sentences for w in normalize_text(s).split()}), "words")
if str(out) == "-":
    sys.exit(0)
rng = random.Random(1)
plan = [plan_utterance(f"llmtext-{out.name}-{index:05d}", "train", text, rng) for index, text in enumerate(sentences)]
CutSet.from_cuts(speak_plan(plan, out / "wavs", workers=2)).to_file(out / "cuts_train.jsonl.gz")

"""WordNet's example sentences as target-like lines for speak_llm_sentences.py: the vocabulary experiment of
docs/results/hear ("Words the templates never say"). ``azeros corpus sentences`` is the same source as a
command (it also keeps only texts of the corpus's train split).

Keeps the examples whose every LLM token is among the LLM's first TOP (:func:`azeros.pipeline.common_sentences`),
shuffled (seeded), the first COUNT.

    python docs/results/hear/wordnet_sentences.py 8000 16000 wordnet.jsonl && gzip wordnet.jsonl
"""
import json
import random
import sys

from azeros.pipeline import common_sentences

count, top, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
common = common_sentences("smollm2-135m-instruct", top)
random.Random(0).shuffle(common)
with open(out, "w") as handle:
    for text in common[:count]:
        handle.write(json.dumps({"supervisions": [{"custom": {"response": text + "."}}]}) + "\n")
print(len(common), "examples of common tokens, kept", min(count, len(common)))

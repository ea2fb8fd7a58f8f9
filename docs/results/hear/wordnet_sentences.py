"""WordNet's example sentences as target-like lines for speak_llm_sentences.py: natural English over a broad
vocabulary (Debian ``wordnet-base``, WordNet 3.0 licence: use and redistribution with its notice).

Keeps the plain lowercase examples of 4-16 words whose every LLM token is among the LLM's first TOP (by merge
order, roughly by frequency: common words, not the rarest spellings), shuffled (seeded), the first COUNT.

    python docs/results/hear/wordnet_sentences.py 8000 16000 wordnet.jsonl && gzip wordnet.jsonl
"""
import json
import random
import re
import sys
from pathlib import Path

from azeros.llm.loading import load_tokenizer

count, top, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tokenizer = load_tokenizer("smollm2-135m-instruct")
examples = set()
for part in ("noun", "verb", "adj", "adv"):
    for line in Path(f"/usr/share/wordnet/data.{part}").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        for example in re.findall(r'"([^"]+)"', line.partition(" | ")[2]):
            text = example.strip().lower()
            if re.fullmatch(r"[a-z][a-z ,'\-]*[a-z]", text) and 4 <= len(text.split()) <= 16:
                examples.add(text)
common = sorted(t for t in examples if max(tokenizer(t, add_special_tokens=False)["input_ids"]) < top)
random.Random(0).shuffle(common)
with open(out, "w") as handle:
    for text in common[:count]:
        handle.write(json.dumps({"supervisions": [{"custom": {"response": text + "."}}]}) + "\n")
print(len(examples), "examples,", len(common), "of common tokens, kept", min(count, len(common)))

"""Random word sequences over the LLM's own whole-word tokens (its TOP first by merge order), written as
target-like lines for speak_llm_sentences.py: every common word becomes a CTC target at least once.

    python docs/results/hear/word_sequences.py 3000 8000 words.jsonl && gzip words.jsonl
"""
import json
import random
import sys

from azeros.llm.loading import load_tokenizer
count, top, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tokenizer = load_tokenizer("smollm2-135m-instruct")
vocab = tokenizer.get_vocab()  # token -> id
words = sorted((i, t[1:]) for t, i in vocab.items() if t.startswith("Ġ") and t[1:].isalpha() and t[1:].islower() and len(t) > 2)
words = [w for _, w in words[:top]]
rng = random.Random(0)
order = words * (count * 7 // len(words) + 1)
rng.shuffle(order)
texts, position = [], 0
for _ in range(count):
    n = rng.randint(4, 10)
    texts.append(" ".join(order[position:position + n]) + rng.choice([".", ".", "?"]))
    position += n
with open(out, "w") as handle:
    for text in texts:
        handle.write(json.dumps({"supervisions": [{"custom": {"response": text}}]}) + "\n")
print(len(words), "words;", texts[:3])

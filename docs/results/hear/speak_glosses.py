"""Speak more WordNet texts with the training voices: the vocabulary experiments of docs/results/hear ("Names,
places and more steps", session 9).

``common OUT COUNT NUM``: the common-token examples that wordnet_sentences.py did not take (its shuffle, from
COUNT on) and NUM common-token definitions (:func:`azeros.data.wordnet.wordnet_glosses`; those naming a place or
a people first); cut ids ``gloss-train-NNNNN``.
``rare OUT``: every example with a token beyond the LLM's 16,000 first (the animals and objects the held-out
questions ask about are there: " spider" is token 16198, " elephant" 17032); cut ids ``wnrare-train-NNNNN``.

Training texts only (:func:`azeros.data.corpus.plan_sentences`' rule), into OUT.

    python docs/results/hear/speak_glosses.py common exp/hear/glosses 8000 8000
    python docs/results/hear/speak_glosses.py rare exp/hear/wnrare
"""
import random
import re
import sys
from pathlib import Path

from lhotse import CutSet

from azeros.data.corpus import plan_sentences, speak_plan
from azeros.data.wordnet import wordnet_glosses, wordnet_sentences
from azeros.llm.loading import load_tokenizer
from azeros.pipeline import common_sentences

kind, out = sys.argv[1], Path(sys.argv[2])
examples = common_sentences("smollm2-135m-instruct", 16000)
if kind == "common":
    count, num = int(sys.argv[3]), int(sys.argv[4])
    random.Random(0).shuffle(examples)  # as wordnet_sentences.py: its first COUNT are already spoken
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    glosses = wordnet_glosses(keep=lambda text: max(tokenizer(text, add_special_tokens=False)["input_ids"]) < 16000)
    # definitions that say a place or a people ("of or relating to the city of singapore") first
    named = re.compile(r"\b(city|country|state|river|island|region|capital|people|language|republic|kingdom)\b")
    random.Random(0).shuffle(glosses)
    glosses.sort(key=lambda text: not named.search(text))
    texts, name = examples[count:] + glosses[:num], "gloss"
else:
    common = set(examples)
    texts, name = [text for text in wordnet_sentences() if text not in common], "wnrare"
texts = [f"{text}." for text in texts]
plan = plan_sentences(texts, None, seed=2, name=name)
print(len(texts), "texts,", len(plan), "training texts")
CutSet.from_cuts(speak_plan(plan, out / "wavs", workers=2)).to_file(out / "cuts_train.jsonl.gz")

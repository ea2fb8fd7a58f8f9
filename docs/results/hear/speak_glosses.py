"""Speak WordNet's definitions (and the example sentences the first 8,000 left) with the training voices.

The second vocabulary experiment of docs/results/hear ("Names, places and more steps"): the common-token
examples that wordnet_sentences.py did not take (its shuffle, from COUNT on) and NUM common-token definitions
(:func:`azeros.data.wordnet.wordnet_glosses`; those naming a place or people first), training texts only
(:func:`azeros.data.corpus.plan_sentences`' rule), cut ids ``gloss-train-NNNNN``, into OUT.

    python docs/results/hear/speak_glosses.py exp/hear/glosses 8000 8000
"""
import random
import re
import sys
from pathlib import Path

from lhotse import CutSet

from azeros.data.corpus import _text_split, plan_sentences, speak_plan
from azeros.data.wordnet import wordnet_glosses
from azeros.pipeline import common_sentences
from azeros.llm.loading import load_tokenizer

out, count, num = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
examples = common_sentences("smollm2-135m-instruct", 16000)
random.Random(0).shuffle(examples)  # as wordnet_sentences.py: its first COUNT are already spoken
tokenizer = load_tokenizer("smollm2-135m-instruct")
glosses = wordnet_glosses(keep=lambda text: max(tokenizer(text, add_special_tokens=False)["input_ids"]) < 16000)
# definitions that say a place or a people ("of or relating to the city of singapore") first
named = re.compile(r"\b(city|country|state|river|island|region|capital|people|language|republic|kingdom)\b")
random.Random(0).shuffle(glosses)
glosses.sort(key=lambda text: not named.search(text))
texts = [f"{text}." for text in examples[count:] + glosses[:num]]
eligible = [text for text in texts if _text_split(text) == "train"]
plan = plan_sentences(eligible, len(eligible), seed=2, name="gloss")
print(len(texts), "texts,", len(plan), "training texts")
CutSet.from_cuts(speak_plan(plan, out / "wavs", workers=2)).to_file(out / "cuts_train.jsonl.gz")

"""Paired differences between systems on the same held-out items, with 95% bootstrap intervals (session 11).

Every system answers the same items, so differences are read paired: resampling whole questions (each is
spoken by several voices, whose answers are not independent) for spoken QA, recordings for the real-recording
recall. Prints each system's difference from the first, for spoken QA over all items, relative to text-only
(over the items the text system gets right), and real-recording repeat recall:

    python docs/results/hear/paired.py exp/hear/eval-words-ctc-v4/text/items.jsonl \
        shipped=exp/hear/eval-glosses-hard-v4/glosses-hard/items.jsonl \
        nodecline=exp/hear/eval-nodecline-v4/nodecline/items.jsonl
"""

import collections
import json
import random
import sys

DRAWS = 2000


def load(path: str) -> dict[str, dict]:
    return {row["id"]: row for row in map(json.loads, open(path))}


def interval(score, units: list, draw: random.Random) -> tuple[float, float, float]:
    """``score(units)`` and the 2.5th and 97.5th percentiles of ``score`` over resamples of ``units``."""
    values = sorted(score([draw.choice(units) for _ in units]) for _ in range(DRAWS))
    return score(units), values[int(0.025 * DRAWS)], values[int(0.975 * DRAWS) - 1]


text_file, *named = sys.argv[1:]
text = load(text_file)
systems = {name: load(path) for name, path in (entry.split("=", 1) for entry in named)}
baseline, *others = systems
questions = collections.defaultdict(list)  # question text -> its items (one per voice)
for item_id, row in text.items():
    if row["task"] == "spoken_qa":
        questions[row["transcript"]].append(item_id)
answered = {q: [i for i in ids if text[i]["score"] >= 1.0] for q, ids in questions.items()}
answered = {q: ids for q, ids in answered.items() if ids}
recordings = [i for i, row in systems[baseline].items() if row["task"] == "real_checks" and row["subtask"] == "repeat"]
draw = random.Random(0)
for name in others:
    def mean_difference(groups, units):
        items = [i for unit in units for i in groups[unit]]
        return sum(systems[name][i]["score"] - systems[baseline][i]["score"] for i in items) / len(items)

    for label, groups in (("spoken QA", questions), ("relative to text", answered),
                          ("real recall", {i: [i] for i in recordings})):
        value, low, high = interval(lambda units, g=groups: mean_difference(g, units), list(groups), draw)
        print(f"{name} - {baseline}: {label} {value:+.3f} [{low:+.3f}, {high:+.3f}] ({len(groups)} units)")

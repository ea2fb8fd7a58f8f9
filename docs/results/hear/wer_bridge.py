"""How well must a projector hear for the LLM to answer? Answers against the word error rate of what it reads
(docs/results/hear, session 13).

The shipped projector compresses speech into the LLM's own token embeddings, so what the LLM reads can be written
down (its heard transcript, ``azeros.eval.heard``). This script gives the same frozen LLM, as text, that heard
transcript with a random share of its errors repaired (each substitution, deletion and insertion of its word
alignment against the true words is kept with probability KEEP, one draw per error and item, so the kept errors
of a lower KEEP are a subset of a higher one's), and Whisper tiny.en's transcript (the cascade), and scores them on
the held-out split beside the text-only system. The result is the line that connects hearing (WER) to answering
(spoken QA relative to text-only, real-recording recall), with the projector's own kinds of error. Run from the
repository root (~45 min on 2 cores):

    python docs/results/hear/wer_bridge.py models/azeros-mini exp/hear/eval-data exp/hear/bridge

Writes ``OUT/heard.jsonl`` (the projector's transcripts), ``OUT/bridge.json`` (per system: WER of what the LLM
read, spoken QA, relative to text, real recall) and the benchmark's files (``OUT/SYSTEM/items.jsonl``...).
"""

import json
import random
import re
import sys
from pathlib import Path

from azeros.eval.curve import held_out_tasks
from azeros.eval.heard import heard_word_error_rate
from azeros.eval.metrics import word_errors
from azeros.eval.runner import run_benchmark
from azeros.eval.systems import CascadeSystem, TextSystem, WhisperTranscriber
from azeros.models import load_model

KEEPS = (1.0, 0.75, 0.5, 0.25, 0.0)
_TOKEN = re.compile(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']")


def tokens(text: str) -> list[str]:
    """Words and punctuation marks, each a token (so a repaired "?" is a repaired error too)."""
    return _TOKEN.findall(text)


def alignment(said: list[str], heard: list[str]) -> list[tuple[str | None, str | None]]:
    """The Levenshtein alignment (case-blind) as (said token or None, heard token or None) pairs, in order."""
    same = [[a.lower() == b.lower() for b in heard] for a in said]
    rows, cols = len(said) + 1, len(heard) + 1
    cost = [[i + j if not (i and j) else 0 for j in range(cols)] for i in range(rows)]
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (not same[i - 1][j - 1]))
    pairs, i, j = [], len(said), len(heard)
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (not same[i - 1][j - 1]):
            pairs.append((said[i - 1], heard[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((said[i - 1], None))
            i -= 1
        else:
            pairs.append((None, heard[j - 1]))
            j -= 1
    return pairs[::-1]


def _is_word(token: str | None) -> bool:
    return token is not None and token[0].isalnum()


def repaired(said: str, heard: str, keep: float, key: str, errors: str = "all") -> str:
    """``heard`` with each error kept with probability ``keep`` (draws fixed by ``key``), else made right.

    ``errors``: which errors may be kept: ``all``, ``words`` (punctuation always repaired) or ``punctuation``.
    """
    draw = random.Random(key)
    out = []
    for true, got in alignment(tokens(said), tokens(heard)):
        error = (true or "").lower() != (got or "").lower()
        kind = "words" if _is_word(true) or _is_word(got) else "punctuation"
        use_heard = not error or (draw.random() < keep and errors in ("all", kind))
        token = got if use_heard else true
        if token is not None:
            out.append(token)
    return re.sub(r" (?=[^\sA-Za-z0-9'])", "", " ".join(out))


def word_error_rate(pairs: list[tuple[str, str]]) -> float:
    """The project's heard WER (``word_errors``: punctuation and case ignored, numbers as digits)."""
    counts = [word_errors(said, read) for said, read in pairs]
    return sum(e for e, _ in counts) / sum(w for _, w in counts)


class Reads(TextSystem):
    """The frozen LLM reading a given text in place of each item's transcript."""

    def __init__(self, host, texts: dict[str, str], name: str) -> None:
        super().__init__(host, "s", name)
        self.texts = texts

    def transcripts(self, items):
        return [self.texts[item.id] for item in items]


def main(folder: str, data: str, out_dir: str) -> None:
    out = Path(out_dir)
    tasks = held_out_tasks(data, voices_per_question=4)
    items = [item for task in tasks for item in task.items()]
    model = load_model(folder)
    model.eval()
    heard_file = out / "heard.jsonl"
    if not heard_file.is_file():
        heard_word_error_rate(model, items, heard_file)
    heard = {row["id"]: row["heard"] for row in map(json.loads, heard_file.open())}
    systems = [TextSystem(model)]
    for keep in KEEPS:
        texts = {item.id: repaired(item.transcript, heard[item.id], keep, item.id) for item in items}
        systems.append(Reads(model, texts, f"heard-keep-{keep:g}"))
    for errors in ("words", "punctuation"):  # one kind of error heard, the other repaired
        texts = {item.id: repaired(item.transcript, heard[item.id], 1.0, item.id, errors) for item in items}
        systems.append(Reads(model, texts, f"heard-{errors}-only"))
    cascade = CascadeSystem(model, WhisperTranscriber())
    systems.append(cascade)
    result = run_benchmark(systems, tasks, out, batch_size=16)
    spoken = [i for i, item in enumerate(items) if item.task == "spoken_qa"]
    real = [i for i, item in enumerate(items) if item.task != "spoken_qa"]
    text_rows = [json.loads(line) for line in (out / "text" / "items.jsonl").open()]
    right = {r["id"] for r in text_rows if r["task"] == "spoken_qa" and r["score"] == 1.0}
    bridge = {}
    for system in systems:
        read = system.transcripts(items)
        rows = [json.loads(line) for line in (out / system.name / "items.jsonl").open()]
        qa = [r for r in rows if r["task"] == "spoken_qa"]
        recall = [r["score"] for r in rows if r["task"] == "real_checks" and r["subtask"] == "repeat"]
        bridge[system.name] = {
            "wer_spoken": round(word_error_rate([(items[i].transcript, read[i]) for i in spoken]), 4),
            "wer_real": round(word_error_rate([(items[i].transcript, read[i]) for i in real]), 4),
            "spoken_qa": round(sum(r["score"] for r in qa) / len(qa), 4),
            "relative_to_text": round(sum(r["score"] for r in qa if r["id"] in right) / len(right), 4),
            "real_recall": round(sum(recall) / len(recall), 4),
        }
        print(system.name, json.dumps(bridge[system.name]), flush=True)
    (out / "bridge.json").write_text(json.dumps(bridge, indent=2) + "\n")
    print(result.table)


if __name__ == "__main__":
    main(*sys.argv[1:])

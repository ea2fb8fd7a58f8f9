"""The 13 real recordings of pocketsphinx-testdata, scored where a score applies.

They have transcripts but no speaker labels, so: text-parity on all (open-ended), "repeat what was
said" on all, and a few questions whose answers the transcripts settle (the card suit named, the
distance, the numbers said). Two task sets, one per metric, reported in one group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from azeros.eval.metrics import (
    RULES,
    check_rule,
    choice_prompt,
    content_word_recall,
    last_number,
    parse_choice,
    shuffled_options,
)
from azeros.eval.task import EvalItem, Task
from azeros.eval.tasks._sources import Recording, manifest_recordings

__all__ = ["REAL_QUESTIONS", "RealChecksTask", "RealParityTask"]

SUITS = ("clubs", "diamonds", "hearts", "spades")
_SUIT_QUESTION = "Which card suit did the speaker name?"
# cut id -> (question, options or None for a number, answer: the right option or the number)
REAL_QUESTIONS: dict[str, tuple[str, tuple[str, ...] | None, str | float]] = {
    "real-cards-001": (_SUIT_QUESTION, SUITS, "clubs"),
    "real-cards-002": (_SUIT_QUESTION, SUITS, "clubs"),
    "real-cards-003": (_SUIT_QUESTION, SUITS, "clubs"),
    "real-cards-004": ("Which number did the speaker say? Answer with the number only.", None, 5),
    "real-raw-goforward": ("How many meters should one go forward? Answer with the number only.", None, 10),
    "real-librivox-sense_and_sensibility_01_austen_64kb-0880": (
        "Is the person described a man or a woman?", ("man", "woman"), "man"),
}


class RealParityTask(Task):
    """Text-parity of the real recordings (see :mod:`azeros.eval.tasks.open_ended`).

    Args:
        manifest: the real recordings' manifest (``azeros corpus real``).
    """

    name: ClassVar[str] = "real_open_ended"
    group: ClassVar[str] = "real-recordings"
    metric: ClassVar[str] = "parity"
    max_new_tokens: ClassVar[int] = 96

    def __init__(self, manifest: str | Path) -> None:
        self.manifest = manifest

    def items(self) -> list[EvalItem]:
        return [EvalItem(f"{self.name}/parity/{rec.id}", self.name, "parity", rec.audio, rec.utterance.transcript)
                for rec in manifest_recordings(self.manifest)]

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        return {}  # scored by the runner


class RealChecksTask(Task):
    """Repeat-what-was-said on every real recording, and the questions of :data:`REAL_QUESTIONS`.

    Args:
        manifest: the real recordings' manifest.
    """

    name: ClassVar[str] = "real_checks"
    group: ClassVar[str] = "real-recordings"
    max_new_tokens: ClassVar[int] = 48

    def __init__(self, manifest: str | Path) -> None:
        self.manifest = manifest

    def _question(self, rec: Recording) -> EvalItem:
        question, options, answer = REAL_QUESTIONS[rec.id]
        key = f"{self.name}/qa/{rec.id}"
        if options is None:
            return EvalItem(key, self.name, "qa", rec.audio, rec.utterance.transcript, instruction=question,
                            reference={"result": answer})
        order = shuffled_options(options, key)
        return EvalItem(key, self.name, "qa", rec.audio, rec.utterance.transcript,
                        instruction=choice_prompt(question, order),
                        reference={"options": order, "answer": order.index(answer)})

    def items(self) -> list[EvalItem]:
        recordings = manifest_recordings(self.manifest)
        repeats = [EvalItem(f"{self.name}/repeat/{rec.id}", self.name, "repeat", rec.audio, rec.utterance.transcript,
                            instruction=RULES["repeat"], reference={"transcript": rec.utterance.transcript})
                   for rec in recordings]
        return repeats + [self._question(rec) for rec in recordings if rec.id in REAL_QUESTIONS]

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        ref = item.reference
        if item.subtask == "repeat":
            # content, not form: the share of content words said back (exact repeats are reported too)
            return {"score": content_word_recall(answer, ref["transcript"]),
                    "exact": check_rule("repeat", answer, transcript=ref["transcript"])}
        if "result" in ref:
            stated = last_number(answer)
            return {"score": float(stated == ref["result"]), "stated": stated}
        parsed = parse_choice(answer, ref["options"])
        return {"score": float(parsed == ref["answer"]), "parsed": parsed}

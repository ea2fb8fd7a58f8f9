"""Unseen text instructions after the audio (IFEval-like), checked by rules.

Each test recording gets one instruction, the rules taking turns: answer in one word, in capitals only,
starting with a given word, repeating what was said, or only yes or no. None of these instructions is
seen in SIFT training, which has no instructions at all: this is the paper's "unseen spoken tasks".
"""

from __future__ import annotations

from typing import Any, ClassVar

from azeros.eval.metrics import RULES, check_rule
from azeros.eval.task import EvalItem
from azeros.eval.tasks._sources import ManifestTask

__all__ = ["InstructionTask"]

START_WORDS = ("Sure", "Okay", "Well", "Certainly", "Hello")


class InstructionTask(ManifestTask):
    """Rule-checked instructions written after corpus recordings.

    Args: see :class:`ManifestTask`.
    """

    name: ClassVar[str] = "instructions"
    group: ClassVar[str] = "instructions"
    max_new_tokens: ClassVar[int] = 48

    def items(self) -> list[EvalItem]:
        rules = list(RULES)
        items = []
        for index, rec in enumerate(self.recordings()):
            rule = rules[index % len(rules)]
            word = START_WORDS[(index // len(rules)) % len(START_WORDS)]
            items.append(EvalItem(
                f"{self.name}/{rule}/{rec.id}", self.name, rule, rec.audio, rec.utterance.transcript,
                rec.utterance.meta, RULES[rule].format(word=word),
                {"rule": rule, "word": word, "transcript": rec.utterance.transcript},
            ))
        return items

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        ref = item.reference
        return {"score": float(check_rule(ref["rule"], answer, word=ref["word"], transcript=ref["transcript"]))}

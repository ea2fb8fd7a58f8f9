"""Spoken questions with checkable answers (VoiceBench SD-QA/OBQA/MMSU-like): facts, arithmetic, multiple choice.

The questions are written here with their answers and spoken with held-out test voices. Scoring is by
rule, no judge: a fact is right when the answer names an accepted answer as whole words; arithmetic when
the last number the answer states is the result; multiple choice when the answer names exactly the
right option (by letter or text, see :func:`azeros.eval.metrics.parse_choice`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from azeros.eval.metrics import contains_phrase, last_number, parse_choice
from azeros.eval.task import EvalItem, Task
from azeros.eval.tasks._sources import spoken_prompt
from azeros.text import normalize_text

__all__ = ["ARITHMETIC", "FACTS", "MULTIPLE_CHOICE", "SpokenQATask"]

# question -> accepted answers (any one, as whole words)
FACTS: dict[str, tuple[str, ...]] = {
    "what is the capital of france?": ("paris",),
    "what is the capital of japan?": ("tokyo",),
    "what is the largest planet in our solar system?": ("jupiter",),
    "what color is the sky on a clear day?": ("blue",),
    "how many legs does a spider have?": ("eight", "8"),
    "who wrote romeo and juliet?": ("shakespeare",),
    "what is the opposite of hot?": ("cold",),
    "what do bees make?": ("honey",),
    "what is frozen water called?": ("ice",),
    "which animal is known as the king of the jungle?": ("lion",),
    "how many days are there in a week?": ("seven", "7"),
    "what is the closest star to the earth?": ("sun",),
}
# question -> result
ARITHMETIC: dict[str, float] = {
    "what is seven plus five?": 12,
    "what is nine minus four?": 5,
    "what is six times three?": 18,
    "what is twenty divided by four?": 5,
    "what is ten plus ten?": 20,
    "what is eight times eight?": 64,
    "what is fifteen minus seven?": 8,
    "what is three plus four plus two?": 9,
    "what is one hundred minus one?": 99,
    "what is twelve divided by three?": 4,
}
# question -> (options in spoken order, index of the right one)
MULTIPLE_CHOICE: dict[str, tuple[tuple[str, ...], int]] = {
    "which of these is a fruit?": (("apple", "chair", "river", "shoe"), 0),
    "which animal can fly?": (("dog", "eagle", "fish", "horse"), 1),
    "which planet do we live on?": (("mars", "venus", "earth", "saturn"), 2),
    "which season is the coldest?": (("summer", "spring", "autumn", "winter"), 3),
    "which of these do you use to write?": (("pencil", "pillow", "plate", "bucket"), 0),
    "which of these animals lives in the sea?": (("camel", "shark", "tiger", "owl"), 1),
    "what do you use to cut paper?": (("sponge", "pillow", "scissors", "towel"), 2),
    "which of these animals is the largest?": (("mouse", "cat", "dog", "elephant"), 3),
    "which of these is a musical instrument?": (("violin", "carrot", "hammer", "blanket"), 0),
    "which of these is a vegetable?": (("stone", "carrot", "glass", "paper"), 1),
    "what language do most people speak in spain?": (("french", "german", "spanish", "italian"), 2),
    "which of these is a color?": (("table", "spoon", "cloud", "green"), 3),
}


def spoken_choices(question: str, options: tuple[str, ...]) -> str:
    """The multiple-choice question as it is spoken: ``"... option a, apple. option b, chair."``."""
    return question + " " + " ".join(f"option {chr(97 + i)}, {option}." for i, option in enumerate(options))


class SpokenQATask(Task):
    """Facts, arithmetic and multiple choice, spoken by held-out voices.

    Args:
        audio_dir: where the spoken questions are written (reused when already there).
        limit: at most this many questions per subtask.
    """

    name: ClassVar[str] = "spoken_qa"
    group: ClassVar[str] = "spoken-qa"
    max_new_tokens: ClassVar[int] = 48

    def __init__(self, audio_dir: str | Path, limit: int | None = None) -> None:
        self.audio_dir = Path(audio_dir)
        self.limit = limit

    def _item(self, subtask: str, index: int, spoken: str, reference: dict[str, Any]) -> EvalItem:
        key = f"{subtask}-{index:02d}"
        return EvalItem(f"{self.name}/{subtask}/{key}", self.name, subtask,
                        spoken_prompt(spoken, key, self.audio_dir), normalize_text(spoken), reference=reference)

    def items(self) -> list[EvalItem]:
        limit = self.limit
        items = [self._item("facts", i, q, {"accepted": list(a)}) for i, (q, a) in enumerate(FACTS.items())][:limit]
        items += [self._item("arithmetic", i, q, {"result": r}) for i, (q, r) in enumerate(ARITHMETIC.items())][:limit]
        items += [
            self._item("choice", i, spoken_choices(q, options), {"options": list(options), "answer": right})
            for i, (q, (options, right)) in enumerate(MULTIPLE_CHOICE.items())
        ][:limit]
        return items

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        ref = item.reference
        if item.subtask == "facts":
            return {"score": float(any(contains_phrase(answer, a) for a in ref["accepted"]))}
        if item.subtask == "arithmetic":
            stated = last_number(answer)
            return {"score": float(stated == ref["result"]), "stated": stated}
        parsed = parse_choice(answer, ref["options"])
        return {"score": float(parsed == ref["answer"]), "parsed": parsed}

"""Paralinguistic multiple choice like AIR-Bench Foundation (speech): gender, emotion and age of the speaker.

The question and the lettered options are written after the audio; the answer is parsed by
:func:`azeros.eval.metrics.parse_choice`. An answer naming no option (or several) is wrong and counted,
unlike AIR-Bench, which drops it. Option order is a fixed permutation per item, so a system that always
answers "A" scores chance, not the share of items whose answer happens to come first.
"""

from __future__ import annotations

from typing import Any, ClassVar

from azeros.data.corpus import AGE_PROSODY, EMOTION_PROSODY
from azeros.eval.metrics import choice_prompt, parse_choice, shuffled_options
from azeros.eval.task import EvalItem
from azeros.eval.tasks._sources import ManifestTask

__all__ = ["PARALINGUISTIC_QUESTIONS", "ParalinguisticTask"]

# label -> (question, options); options are the corpus's label values
PARALINGUISTIC_QUESTIONS = {
    "gender": ("What is the gender of the speaker?", ("male", "female")),
    "emotion": ("Which emotion does the speaker's voice express?", tuple(sorted(EMOTION_PROSODY))),
    "age": ("Which age group does the speaker belong to?", tuple(sorted(AGE_PROSODY))),
}


class ParalinguisticTask(ManifestTask):
    """Gender, emotion and age questions about corpus test recordings (labels known by construction).

    Args: see :class:`ManifestTask`.
    """

    name: ClassVar[str] = "paralinguistic"
    group: ClassVar[str] = "paralinguistic"
    max_new_tokens: ClassVar[int] = 16

    def items(self) -> list[EvalItem]:
        items = []
        recordings = self.recordings()
        for label, (question, options) in PARALINGUISTIC_QUESTIONS.items():
            for rec in recordings:
                truth = rec.utterance.meta.get(label)
                if truth not in options:
                    continue
                key = f"{self.name}/{label}/{rec.id}"
                order = shuffled_options(options, key)
                items.append(EvalItem(
                    key, self.name, label, rec.audio, rec.utterance.transcript, rec.utterance.meta,
                    choice_prompt(question, order), {"options": order, "answer": order.index(truth)},
                ))
        return items

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        parsed = parse_choice(answer, item.reference["options"])
        return {"score": float(parsed == item.reference["answer"]), "parsed": parsed}

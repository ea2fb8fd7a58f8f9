"""Spoken questions with checkable answers, read by voices and engines never heard in training.

The questions (:mod:`azeros.data.heldout`: facts, arithmetic, yes/no, multiple choice, repeat-after-me)
are in no training split, and each is spoken by ``voices_per_question`` voices of
:data:`azeros.data.corpus.HELD_OUT_ENGINE_VOICES` (festival, piper, and the held-out espeak-ng and flite
speakers). Scoring is by rule, no judge, on the content of the answer, not its form:

* facts: the answer names an accepted answer as whole words;
* arithmetic: the last number the answer states is the result;
* yes/no: the first yes or no the answer says is the right one;
* choice: the answer names exactly the right option (by letter or text, :func:`~azeros.eval.metrics.parse_choice`);
* repeat: the share of the sentence's content words the answer says (:func:`~azeros.eval.metrics.content_word_recall`).

The runner reports each system's accuracy also relative to the ``text`` system on the items it gets
right (:func:`azeros.eval.runner.run_benchmark`), so a speech model is measured against what its own LLM
can do with the words.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from azeros.audio.synth import VoiceSetting
from azeros.data.corpus import HELD_OUT_ENGINE_VOICES
from azeros.data.heldout import ARITHMETIC, FACTS, MULTIPLE_CHOICE, REPEAT, YES_NO
from azeros.eval.metrics import answer_words, contains_phrase, content_word_recall, last_number, parse_choice
from azeros.eval.task import EvalItem, Task
from azeros.eval.tasks._sources import spoken_prompt
from azeros.text import normalize_text

__all__ = ["REPEAT_PREFIX", "SpokenQATask", "spoken_choices"]

REPEAT_PREFIX = "repeat after me. "  # spoken before the sentence: the whole request is in the audio


def spoken_choices(question: str, options: tuple[str, ...]) -> str:
    """The multiple-choice question as it is spoken: ``"... option a, apple. option b, chair."``."""
    return question + " " + " ".join(f"option {chr(97 + i)}, {option}." for i, option in enumerate(options))


def _voices(key: str, count: int) -> list[VoiceSetting]:
    """``count`` distinct held-out voices for one question, picked by a hash of its key."""
    start = int(hashlib.sha256(key.encode()).hexdigest(), 16)
    picked = [HELD_OUT_ENGINE_VOICES[(start + i * 3) % len(HELD_OUT_ENGINE_VOICES)] for i in range(count)]
    return [VoiceSetting(engine, voice, accent=accent) for engine, voice, accent in dict.fromkeys(picked)]


class SpokenQATask(Task):
    """Held-out spoken questions (facts, arithmetic, yes/no, choice, repeat) by held-out voices.

    Args:
        audio_dir: where the spoken questions are written (reused when already there).
        limit: at most this many questions per subtask.
        voices_per_question: how many held-out voices speak each question (each is one item).
    """

    name: ClassVar[str] = "spoken_qa"
    group: ClassVar[str] = "spoken-qa"
    max_new_tokens: ClassVar[int] = 48

    def __init__(self, audio_dir: str | Path, limit: int | None = None, voices_per_question: int = 2) -> None:
        self.audio_dir = Path(audio_dir)
        self.limit = limit
        self.voices_per_question = voices_per_question

    def _items(self, subtask: str, questions: list[tuple[str, dict[str, Any]]]) -> list[EvalItem]:
        items = []
        for index, (spoken, reference) in enumerate(questions[: self.limit]):
            key = f"{subtask}-{index:02d}"
            for setting in _voices(key, self.voices_per_question):
                audio = spoken_prompt(spoken, f"{key}-{setting.speaker}", self.audio_dir, setting)
                items.append(EvalItem(f"{self.name}/{subtask}/{key}/{setting.speaker}", self.name, subtask, audio,
                                      normalize_text(spoken), reference=reference))
        return items

    def items(self) -> list[EvalItem]:
        return (
            self._items("facts", [(q, {"accepted": list(a)}) for q, a in FACTS.items()])
            + self._items("arithmetic", [(q, {"result": r}) for q, r in ARITHMETIC.items()])
            + self._items("yes_no", [(q, {"answer": a}) for q, a in YES_NO.items()])
            + self._items("choice", [(spoken_choices(q, options), {"options": list(options), "answer": right})
                                     for q, (options, right) in MULTIPLE_CHOICE.items()])
            + self._items("repeat", [(REPEAT_PREFIX + s, {"sentence": s}) for s in REPEAT])
        )

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        ref = item.reference
        if item.subtask == "facts":
            return {"score": float(any(contains_phrase(answer, a) for a in ref["accepted"]))}
        if item.subtask == "arithmetic":
            stated = last_number(answer)
            return {"score": float(stated == ref["result"]), "stated": stated}
        if item.subtask == "yes_no":
            said = next((w for w in answer_words(answer) if w in ("yes", "no")), None)
            return {"score": float(said == ref["answer"]), "parsed": said}
        if item.subtask == "repeat":
            return {"score": content_word_recall(answer, ref["sentence"])}
        parsed = parse_choice(answer, ref["options"])
        return {"score": float(parsed == ref["answer"]), "parsed": parsed}

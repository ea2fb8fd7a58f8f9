"""What a benchmark is made of: items (audio, optional instruction, reference) and a task that scores them.

A task set (one file under :mod:`azeros.eval.tasks`) yields :class:`EvalItem` s and scores an answer to
each. Items carry their oracle text (the transcript and known speaker labels) so the ``text`` system can
be shown what the speech says; speech systems only get the audio and the instruction.

Two kinds of score:

* ``accuracy``: :meth:`Task.score` reads the answer (1.0 right, 0.0 wrong) — multiple choice, checkable
  answers, instruction rules;
* ``parity``: open-ended prompts have no single right answer; the runner measures how well a system's
  input lets the frozen LLM reproduce the text system's own answer (see :mod:`azeros.eval.runner`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = ["EvalItem", "Task"]


@dataclass
class EvalItem:
    """One question to a system.

    Attributes:
        id: unique within its task set (``{task}/{subtask}/{source id}``).
        task: the task set's name.
        subtask: the column it is reported under (``gender``, ``arithmetic``, ``one_word``...).
        audio: path of the 16 kHz recording.
        transcript: the normalized transcript of the recording (the oracle text).
        meta: known speaker labels in oracle order (``{"gender": "female", ...}``).
        instruction: text written after the audio, or ``None`` (the speech is the whole question).
        reference: whatever the task needs to score the answer (the right option, the rule...).
    """

    id: str
    task: str
    subtask: str
    audio: str
    transcript: str
    meta: Mapping[str, str] = field(default_factory=dict)
    instruction: str | None = None
    reference: Mapping[str, Any] = field(default_factory=dict)


class Task(ABC):
    """A task set: its items and how an answer to one of them is scored.

    Attributes:
        name: the task set's name (a table row group and a file name).
        group: the report group it belongs to (one table and one chart per group).
        metric: ``accuracy`` (scored from the answer) or ``parity`` (per-token cross-entropy, lower is better).
        max_new_tokens: answer length limit for its items.
    """

    name: ClassVar[str]
    group: ClassVar[str]
    metric: ClassVar[Literal["accuracy", "parity"]] = "accuracy"
    max_new_tokens: ClassVar[int] = 48

    @abstractmethod
    def items(self) -> list[EvalItem]:
        """The items, in a fixed order."""

    @abstractmethod
    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        """Score one answer.

        Returns:
            ``{"score": 1.0 or 0.0, ...}`` plus whatever explains it (the option parsed...). Parity tasks
            return only what explains the answer; the runner adds their score.
        """

"""Open-ended spoken prompts (VoiceBench AlpacaEval/CommonEval-like): text-parity, and a judge when configured.

The prompts are the corpus test split: texts and voices never used in training. There is no right
answer; the runner scores how well each system's input lets the frozen LLM reproduce the text system's
own greedy answer (per-token cross-entropy, lower is better).
"""

from __future__ import annotations

from typing import Any, ClassVar

from azeros.eval.task import EvalItem
from azeros.eval.tasks._sources import ManifestTask

__all__ = ["OpenEndedTask"]


class OpenEndedTask(ManifestTask):
    """Open-ended spoken prompts from a corpus manifest.

    Args: see :class:`ManifestTask`.
    """

    name: ClassVar[str] = "open_ended"
    group: ClassVar[str] = "open-ended"
    metric: ClassVar[str] = "parity"
    max_new_tokens: ClassVar[int] = 96

    def items(self) -> list[EvalItem]:
        return [
            EvalItem(f"{self.name}/parity/{rec.id}", self.name, "parity", rec.audio, rec.utterance.transcript,
                     rec.utterance.meta)
            for rec in self.recordings()
        ]

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        return {}  # scored by the runner: parity against the reference, and the judge

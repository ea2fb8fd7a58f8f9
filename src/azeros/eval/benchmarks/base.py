"""What the published benchmarks share: subsets that score an answer two ways, and a missing-data error.

A subset is a :class:`~azeros.eval.task.Task` whose ``score`` returns ``official`` (the benchmark's own
reading, random fallbacks seeded) and ``strict`` (unparseable = wrong) per item, and whose
:meth:`BenchmarkSubset.summarize` turns the item records into the figures a paper's table shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from azeros.eval.task import Task

__all__ = ["BenchmarkSubset", "MissingBenchmarkData", "mean_present"]


class MissingBenchmarkData(FileNotFoundError):
    """A benchmark's files are not where they were looked for; the message says how to get them."""


def mean_present(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not ``None`` (``None`` when none is)."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


class BenchmarkSubset(Task):
    """One column of a published table.

    Attributes:
        column: the column's name in the paper (``AlpacaEval``, ``Gender``...).
        scale: ``judge`` (a judge's mean score, 1-5 or 1-10) or ``percent`` (accuracy or rate, 0-100).
    """

    metric: ClassVar[str] = "accuracy"
    column: ClassVar[str]
    scale: ClassVar[Literal["judge", "percent"]] = "percent"

    def summarize(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The subset's figures from its item records: ``n``, ``official``, ``strict``, ``unparsed``.

        An item whose ``official`` is ``None`` is left out of the official figure only (as the official
        scorer drops it); the strict figure counts every item.
        """
        scale = 100.0 if self.scale == "percent" else 1.0
        official = mean_present([r["official"] for r in records])
        return {
            "n": len(records),
            "official": None if official is None else round(scale * official, 4),
            "strict": round(scale * mean_present([r["strict"] for r in records]), 4) if records else None,
            "unparsed": sum(r.get("parsed") is None for r in records if "parsed" in r),
            "scale": self.scale,
        }

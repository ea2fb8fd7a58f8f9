"""``azeros generate`` as one library call: run every dataset and mode, account for every cut, optionally
check how much oracle information the targets carry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from azeros.data import read_cuts
from azeros.selfgen.base import Backend
from azeros.selfgen.check import ElicitReport, elicit_report
from azeros.selfgen.runner import GenerateConfig, RunSummary, output_paths, run_generation

__all__ = ["TargetsReport", "generate_targets"]

_TOTALS = ("inputs", "done", "rejected", "generated_tokens")


@dataclass
class TargetsReport:
    """What one ``generate`` job did.

    Attributes:
        summaries: one per dataset and mode.
        elicit: the self-elicit check of the targets, when asked for.
    """

    summaries: list[RunSummary]
    elicit: ElicitReport | None = None

    @property
    def totals(self) -> dict[str, int]:
        """``inputs``, ``done``, ``rejected`` and ``generated_tokens`` over every dataset and mode."""
        return {key: sum(getattr(s, key) for s in self.summaries) for key in _TOTALS}

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.summaries)

    def line(self) -> str:
        """``in = done + rejected`` and the generation speed, as one line."""
        totals, seconds = self.totals, self.seconds
        return (f"in {totals['inputs']} = done {totals['done']} + rejected {totals['rejected']}; "
                f"{totals['generated_tokens']} tokens in {seconds:.1f}s "
                f"({totals['generated_tokens'] / max(seconds, 1e-9):.0f} tok/s)")


def generate_targets(
    config: GenerateConfig, backend: Backend | None, *, check: bool = False, progress: bool = True
) -> TargetsReport:
    """Generate the targets of ``config`` and write ``{out_dir}/summary_{shard}.json``.

    Args:
        config: the run (``config.limit`` is the check's sample size when ``check``).
        backend: the LLM backend; ``None`` when every mode is TSIT_s.
        check: also report how often the targets mention each piece of oracle information.
        progress: show progress bars.
    """
    report = TargetsReport(run_generation(config, backend, progress=progress))
    summary = {**report.totals, "seconds": round(report.seconds, 3), "runs": [s.__dict__ for s in report.summaries]}
    (Path(config.out_dir) / f"summary_{config.shard}.json").write_text(json.dumps(summary, indent=2) + "\n")
    if check:
        paths = [output_paths(config.out_dir, spec.name, mode, config.shard)[0]
                 for spec in config.datasets for mode in config.modes]
        report.elicit = elicit_report(read_cuts(paths))
    return report

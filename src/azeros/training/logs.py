"""What a run writes about itself: a jsonl log, TensorBoard scalars, and a PNG of the curves at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["TrainLog", "plot_curves"]


class TrainLog:
    """Appends records to ``{folder}/log.jsonl`` and TensorBoard (``{folder}/tensorboard``).

    Args:
        folder: the run's output folder.
        enabled: ``False`` on every process but rank 0.
    """

    def __init__(self, folder: str | Path, enabled: bool = True) -> None:
        self.folder = Path(folder)
        self.enabled = enabled
        self._jsonl = None
        self._board = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.folder.mkdir(parents=True, exist_ok=True)
            self._jsonl = (self.folder / "log.jsonl").open("a")
            self._board = SummaryWriter(str(self.folder / "tensorboard"))

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """Record ``values`` (numbers) of kind ``train`` or ``valid`` at ``step``."""
        if not self.enabled:
            return
        self._jsonl.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        self._jsonl.flush()
        for name, value in values.items():
            self._board.add_scalar(f"{kind}/{name}", value, step)

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._board.close()


def plot_curves(log_file: str | Path, out: str | Path) -> Path:
    """Plot loss, accuracy and learning rate from a jsonl log into a PNG.

    A resumed run re-logs the steps after its last checkpoint; the last record of each step wins.

    Args:
        log_file: ``log.jsonl``.
        out: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for line in Path(log_file).read_text().splitlines():
        record = json.loads(line)
        latest[(record["kind"], record["step"])] = record
    series = {kind: sorted((r for (k, _), r in latest.items() if k == kind), key=lambda r: r["step"]) for kind in ("train", "valid")}
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for axis, metric in zip(axes, ("loss", "acc", "lr"), strict=True):
        for kind, records in series.items():
            points = [(r["step"], r[metric]) for r in records if metric in r]
            if points:
                axis.plot(*zip(*points), marker="o" if kind == "valid" else None, label=kind)
        axis.set_xlabel("step")
        axis.set_title({"loss": "cross-entropy (answer tokens)", "acc": "next-token accuracy", "lr": "learning rate"}[metric])
        axis.grid(alpha=0.3)
        if metric != "lr":
            axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return Path(out)

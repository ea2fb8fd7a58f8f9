"""Checkpoints that let a killed run continue exactly.

``{output_dir}/checkpoints/step-{N}/`` holds:

* ``projectors.safetensors``: every projector's weights (reference names);
* ``average.safetensors``: the averaged trainable weights;
* ``state.pt``: step, optimizer, sampler position and RNG states (plain tensors and numbers, read back
  with ``weights_only=True``).

A checkpoint is written under a temporary name and renamed when complete, so a kill mid-save leaves the
previous one intact.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

__all__ = ["Checkpoint", "latest_checkpoint", "python_random_state", "rng_state", "set_rng_state", "written_whole"]

_PREFIX = "step-"


def rng_state() -> dict[str, Any]:
    """Every RNG the run could touch: torch (CPU and CUDA), numpy, Python."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    random.setstate(python_random_state(state["python"]))


def python_random_state(saved: Sequence[Any]) -> tuple:
    """A ``random.Random`` state as ``setstate`` takes it, from what ``getstate`` gave and a checkpoint read back
    (a list where there was a tuple)."""
    version, internal, gauss = saved
    return version, tuple(internal), gauss


@contextmanager
def written_whole(folder: Path) -> Iterator[Path]:
    """A staging folder to write into; it replaces ``folder`` once the block ends without error, so a kill
    mid-write leaves the previous ``folder`` intact."""
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    yield staging
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


@dataclass
class Checkpoint:
    """One saved training state (see the module docstring for the files)."""

    folder: Path

    @property
    def step(self) -> int:
        return int(self.folder.name[len(_PREFIX):])

    @classmethod
    def save(
        cls,
        root: str | Path,
        step: int,
        projectors: dict[str, torch.Tensor],
        average: dict[str, torch.Tensor],
        state: dict[str, Any],
        keep: int,
    ) -> Checkpoint:
        """Write ``root/step-{step}/`` atomically and prune all but the newest ``keep`` checkpoints."""
        root = Path(root)
        final = root / f"{_PREFIX}{step}"
        with written_whole(final) as staging:
            save_file(projectors, staging / "projectors.safetensors")
            save_file(average, staging / "average.safetensors")
            torch.save(state, staging / "state.pt")
        for old in sorted(_checkpoints(root), key=lambda c: c.step)[:-keep or None]:
            shutil.rmtree(old.folder)
        return cls(final)

    def projectors(self) -> Path:
        return self.folder / "projectors.safetensors"

    def average(self) -> dict[str, torch.Tensor]:
        return load_file(self.folder / "average.safetensors")

    def state(self) -> dict[str, Any]:
        return torch.load(self.folder / "state.pt", map_location="cpu", weights_only=True)


def _checkpoints(root: Path) -> list[Checkpoint]:
    if not root.is_dir():
        return []
    return [Checkpoint(p) for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX):].isdigit()]


def latest_checkpoint(root: str | Path) -> Checkpoint | None:
    """The checkpoint with the highest step under ``root``, or ``None``."""
    found = _checkpoints(Path(root))
    return max(found, key=lambda c: c.step) if found else None

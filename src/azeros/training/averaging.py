"""Averages of the trainable projector weights: an fp32 copy of tens of millions of numbers, not of the
whole model (the reference keeps a float64 copy of all 7B parameters to average 48M)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from azeros.training.recipe import AverageSection

__all__ = ["ProjectorAverage"]


class ProjectorAverage:
    """EMA or running mean of named parameters.

    Args:
        params: the trainable parameters by name (the projectors' ``named_parameters``).
        section: the recipe's averaging settings.
    """

    def __init__(self, params: Mapping[str, torch.nn.Parameter], section: AverageSection) -> None:
        self.section = section
        self.params = dict(params)
        self.average = {name: p.detach().float().clone() for name, p in self.params.items()}
        self.count = 0  # updates folded into the running mean

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the current weights after optimizer step ``step`` (1-based), when it is due."""
        kind, every = self.section.kind, self.section.every
        if kind == "none" or step % every or step < self.section.start:
            return
        self.count += 1
        # EMA: avg <- decay * avg + (1 - decay) * w; running mean: avg <- avg + (w - avg) / n.
        weight = 1.0 - self.section.decay if kind == "ema" else 1.0 / self.count
        for name, p in self.params.items():
            self.average[name].lerp_(p.detach().float(), weight)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights plus the update count, as flat tensors (safetensors-ready)."""
        return {**{name: t.clone() for name, t in self.average.items()}, "__count__": torch.tensor(self.count)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        for name in self.average:
            self.average[name].copy_(state[name])
        self.count = int(state["__count__"])

    @torch.no_grad()
    def copy_to(self, params: Mapping[str, torch.nn.Parameter]) -> None:
        """Write the averages into ``params`` (for export), unless averaging is off."""
        if self.section.kind == "none":
            return
        for name, p in params.items():
            p.copy_(self.average[name].to(p.dtype))

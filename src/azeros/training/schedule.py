"""Learning rate as a pure function of the optimizer step: resuming needs only the step."""

from __future__ import annotations

import math

from azeros.training.recipe import OptimSection

__all__ = ["lr_at"]


def lr_at(step: int, optim: OptimSection, max_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warmup, then the chosen decay.

    Args:
        step: optimizer steps taken so far.
        optim: the recipe's optimizer section.
        max_steps: the run's length (cosine reaches its floor there).

    Returns:
        The learning rate.
    """
    warmup = min(1.0, (step + 1) / optim.warmup_steps) if optim.warmup_steps > 0 else 1.0
    if optim.schedule == "constant":
        decay = 1.0
    elif optim.schedule == "eden":
        decay = (1.0 + (step / optim.eden_steps) ** 2) ** -0.5
    elif optim.schedule == "cosine":
        span = max(1, max_steps - optim.warmup_steps)
        progress = min(1.0, max(0, step - optim.warmup_steps) / span)
        decay = optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"optim.schedule must be cosine, eden or constant, got {optim.schedule!r}")
    return optim.lr * warmup * decay

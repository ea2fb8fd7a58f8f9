"""Test audio for the inference and serving tests (importable from their modules, unlike conftest)."""

from __future__ import annotations

import numpy as np


def speechlike(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """Noise with a tone in it at a speech-like level: distinct per seed, never silent."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate))
    wave = 0.3 * rng.standard_normal(t.size) + np.sin(t * (0.02 + 0.01 * (seed % 7)))
    return (0.1 * wave / np.abs(wave).max()).astype(np.float32)

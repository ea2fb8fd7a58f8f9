"""Zipformer2 encoders in icefall's/Auden's format (the paper's TTA and Auden-Voice): 80-dim fbank in,
frames at 25 Hz out.

An encoder folder holds ``config.json`` (icefall's field names) and the weights, in the reference's order
of preference: ``pretrained.safetensors``, ``model.safetensors``, ``pretrained.pt``, ``model.pt``. The
weights load strictly: a missing or unexpected parameter is an error that names it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from azeros.audio import FBANK_DIM, fbank_batch, fbank_num_frames
from azeros.models.encoders._zipformer2 import Zipformer2Model, ZipformerConfig, embed_frames, output_frames
from azeros.models.encoders.base import SpeechEncoder

__all__ = ["BATCH_COUNT_KEY", "WEIGHT_FILES", "ZipformerEncoder", "load_zipformer_weights"]

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("pretrained.safetensors", "model.safetensors", "pretrained.pt", "model.pt")
BATCH_COUNT_KEY = "model_batch_count"  # Auden's scalar beside the weights
_FBANK_RATE = 100.0  # fbank frames a second
_MIN_FBANK_FRAMES = 9  # the frontend's (9 - 7) // 2 = 1 frame
_LISTED_KEYS = 20  # how many missing or unexpected names an error spells out


class ZipformerEncoder(SpeechEncoder):
    """A frozen Zipformer2 (25 frames a second, ``max(encoder_dim)`` wide: 768 for TTA and Auden-Voice).

    Args:
        path: an encoder folder (``config.json`` + weights) or a weights file with ``config.json`` beside it.
        config: instead of ``path``, a :class:`ZipformerConfig` (or its dict) for random weights (tests,
            benchmarks).
        seed: seeds the random weights when built from ``config``.

    Attributes:
        batch_count: the ``model_batch_count`` its weights file held (Auden's training step count, which only
            training-time schedules read), a scalar tensor kept so that saving writes it back unchanged; 0
            otherwise.
    """

    kind = "zipformer"

    def __init__(
        self, path: str | None = None, *, config: ZipformerConfig | dict | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        if (path is None) == (config is None):
            raise ValueError("give exactly one of `path` or `config` for a zipformer encoder")
        self.path, self.seed = path, seed
        self.batch_count = torch.tensor(0.0)
        if path is not None:
            weights_file, config_file = _encoder_files(Path(path))
            config = ZipformerConfig.from_dict(json.loads(config_file.read_text()))
        elif not isinstance(config, ZipformerConfig):
            config = ZipformerConfig.from_dict(config)
        if config.feature_dim != FBANK_DIM:
            raise ValueError(f"zipformer config: feature_dim {config.feature_dim}, but fbank gives {FBANK_DIM}")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = Zipformer2Model(config)
        if path is not None:
            state = load_zipformer_weights(weights_file)
            self.batch_count = state.pop(BATCH_COUNT_KEY, self.batch_count)
            _load_strictly(self.model, state, weights_file)
            logger.info("zipformer encoder: loaded %s", weights_file)
        self.model.requires_grad_(False)
        self.dim = max(config.encoder_dim)
        self.frame_rate = _FBANK_RATE / 2 / config.output_downsampling_factor  # the frontend halves the rate
        self.eval()

    def num_frames(self, num_samples: int) -> int:
        fbank_frames = fbank_num_frames(num_samples)
        if embed_frames(fbank_frames) < 1:
            raise ValueError(
                f"zipformer encoder: {num_samples} samples is too short (needs {_MIN_FBANK_FRAMES} fbank frames, 85 ms)"
            )
        return output_frames(fbank_frames, self.model.config.output_downsampling_factor)

    @torch.no_grad()
    def forward(
        self, waves: Sequence[np.ndarray], augment_seeds: Sequence[int | None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``[b, t, d]`` and lengths ``[b]``; ``augment_seeds`` SpecAugments the fbank of the utterances
        with a seed (training only: :func:`azeros.audio.spec_augment`)."""
        lengths = torch.tensor([self.num_frames(len(w)) for w in waves], dtype=torch.long)  # refuses too short
        feats, feat_lengths = fbank_batch(waves, augment_seeds)  # [b, T, 80], [b]
        weight = self.model.encoder_embed.out.weight
        frames, _ = self.model(feats.to(weight.device, weight.dtype), feat_lengths.to(weight.device))
        return frames, lengths

    def config(self) -> dict[str, Any]:
        if self.path is not None:
            return {"path": self.path}
        return {"config": self.model.config.to_dict(), "seed": self.seed}


def load_zipformer_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A Zipformer2's state dict under icefall's names, from a ``.safetensors`` or ``.pt`` file.

    A ``.pt`` file is read with ``weights_only=True`` and may wrap the weights in ``{"state_dict": ...}``
    (Auden) or ``{"model": ...}`` (icefall). DDP's ``module.`` and the prefix of a parent model (Auden's
    ``speech_encoder.``, ``paraling_encoder.``, ``audio_encoder.``, ...) are removed, keeping that model's
    encoder only; Auden's ``model_batch_count`` (the step count behind training-time schedules) is kept
    under that name when the file holds it.

    Raises:
        ValueError: when no Zipformer is in the file, or several are.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    # Every Zipformer has a frontend: the names before it are the prefix to remove.
    prefixes = {_prefix_before(key, "encoder_embed") for key in state if "encoder_embed" in key.split(".")}
    if len(prefixes) != 1:
        found = ", ".join(sorted(repr(p) for p in prefixes)) or "none"
        raise ValueError(f"{path}: expected the weights of one Zipformer (encoder_embed.*), found prefixes: {found}")
    prefix = prefixes.pop()
    return {
        key[len(prefix):]: value
        for key, value in state.items()
        if key.startswith(prefix)
    }


def _prefix_before(key: str, name: str) -> str:
    parts = key.split(".")
    return "".join(f"{part}." for part in parts[: parts.index(name)])


def _encoder_files(path: Path) -> tuple[Path, Path]:
    """``(weights, config.json)`` of an encoder folder or weights file."""
    folder = path if path.is_dir() else path.parent
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"zipformer encoder: no config.json in {folder}")
    if not path.is_dir():
        return path, config_file
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name, config_file
    raise FileNotFoundError(f"zipformer encoder: none of {', '.join(WEIGHT_FILES)} in {folder}")


def _load_strictly(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a shape that config.json does not give
        raise ValueError(f"{source}: the weights do not fit config.json: {error}") from error
    problems = [f"{len(names)} {what}: {', '.join(names[:_LISTED_KEYS])}{' ...' if len(names) > _LISTED_KEYS else ''}"
                for what, names in (("missing", missing), ("unexpected", unexpected)) if names]
    if problems:
        raise ValueError(f"{source}: not the weights of this Zipformer ({'; '.join(problems)})")

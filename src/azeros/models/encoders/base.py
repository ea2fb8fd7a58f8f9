"""The interface every frozen speech encoder shares."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

__all__ = ["SpeechEncoder", "pad_frames"]


class SpeechEncoder(nn.Module, ABC):
    """A frozen encoder: 16 kHz waveforms in, frame sequences out.

    Subclasses set ``kind`` (the registry name), ``dim`` (frame size) and ``frame_rate`` (frames per
    second), and write their length formula once, in :meth:`num_frames`; :meth:`forward` must return
    exactly that many valid frames per waveform, whatever else is in the batch.
    """

    kind: ClassVar[str]
    dim: int
    frame_rate: float

    @abstractmethod
    def num_frames(self, num_samples: int) -> int:
        """How many frames a waveform of ``num_samples`` samples gives."""

    @abstractmethod
    def forward(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch of mono 16 kHz float waveforms.

        Args:
            waves: one 1-D float32 array per utterance, of any lengths.

        Returns:
            ``(frames, lengths)``: frames ``[b, t, dim]`` zero-padded after each utterance's valid frames,
            lengths ``[b]`` (int64) equal to :meth:`num_frames` of each waveform.
        """

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """A JSON-able description that :func:`azeros.models.encoders.build_encoder` rebuilds it from."""

    def fingerprint(self) -> str:
        """A short hash of the config: changes when the encoder or its feature settings change."""
        blob = json.dumps({"kind": self.kind, **self.config()}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def train(self, mode: bool = True) -> SpeechEncoder:
        # Frozen encoders stay in eval mode: dropout or feature masks would perturb inputs whose targets
        # came from clean text (the reference leaves its Zipformers in train mode).
        return super().train(False)


def pad_frames(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``[t_i, d]`` tensors into ``[b, max t, d]`` with zeros after each, plus lengths ``[b]``."""
    lengths = torch.tensor([s.shape[0] for s in sequences], dtype=torch.long)
    frames = nn.utils.rnn.pad_sequence(list(sequences), batch_first=True)  # [b, t, d]
    return frames, lengths

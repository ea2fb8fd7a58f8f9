"""The GE2E speaker encoder with resemblyzer's weights: the paralinguistic stand-in of the default model.

Resemblyzer embeds 1.6 s windows ("partials") of 40-bin mel frames with a 3-layer LSTM and keeps the
last step. Here the LSTM runs once over the whole utterance and the embedding is read off every
``hop_frames`` steps: a running speaker embedding at 10 Hz that a projector reads like any other
encoder's frames. (Re-running the LSTM on a 1.6 s window around every output frame costs 16x more steps:
about 10 s for 20 s of audio on two CPU cores.) Only the weights file comes from the package (it cannot be
imported here); the model is written here and loaded with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import librosa
import numpy as np
import torch
from torch import nn

from azeros.models.encoders.base import SpeechEncoder, pad_frames

__all__ = ["GE2EEncoder"]

_SAMPLE_RATE = 16000
_MEL_HOP = 160  # 10 ms
_MEL_WINDOW = 400  # 25 ms
_N_MELS = 40
_TARGET_DBFS = -30.0


class GE2EEncoder(SpeechEncoder):
    """GE2E (resemblyzer) running speaker embeddings, one every ``hop_frames`` * 10 ms.

    Args:
        path: resemblyzer's ``pretrained.pt``; ``None`` builds random weights (tests).
        hop_frames: mel frames between output frames (10 gives 10 Hz).
        seed: seeds the random weights when ``path`` is ``None``.
    """

    kind = "ge2e"

    def __init__(self, path: str | None = None, *, hop_frames: int = 10, seed: int = 0) -> None:
        super().__init__()
        self.path = path
        self.hop_frames = hop_frames
        self.seed = seed
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.lstm = nn.LSTM(_N_MELS, 256, num_layers=3, batch_first=True)
            self.linear = nn.Linear(256, 256)
        if path is not None:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("model_state", state)
            weights = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
            missing, _ = self.load_state_dict(weights, strict=False)
            if missing:
                raise ValueError(f"{path}: not resemblyzer GE2E weights (missing {missing[:3]})")
        self.requires_grad_(False)
        self.mel_basis = librosa.filters.mel(sr=_SAMPLE_RATE, n_fft=_MEL_WINDOW, n_mels=_N_MELS)  # [40, 201]
        self.dim = 256
        self.frame_rate = 100.0 / hop_frames
        self.eval()

    def _mel_frames(self, num_samples: int) -> int:
        return 1 + num_samples // _MEL_HOP  # centred STFT

    def num_frames(self, num_samples: int) -> int:
        return max(1, self._mel_frames(num_samples) // self.hop_frames)

    def _mel(self, wave: np.ndarray) -> np.ndarray:
        # Resemblyzer's preprocessing: raise quiet audio to -30 dBFS, then a 40-bin power mel.
        rms_db = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) + 1e-12)
        if rms_db < _TARGET_DBFS:
            wave = wave * np.float32(10 ** ((_TARGET_DBFS - rms_db) / 20))
        spec = np.abs(librosa.stft(wave, n_fft=_MEL_WINDOW, hop_length=_MEL_HOP)) ** 2  # [201, t]
        # Contiguous: a transposed (Fortran-order) input sends the LSTM down a path ~5x slower.
        return np.ascontiguousarray((self.mel_basis @ spec).T, dtype=np.float32)  # [t, 40]

    @torch.no_grad()
    def forward(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.linear.weight.device
        dtype = self.linear.weight.dtype
        mels = [torch.from_numpy(self._mel(w)) for w in waves]  # each [t_i, 40]
        steps = torch.tensor([m.shape[0] for m in mels])
        padded = nn.utils.rnn.pad_sequence(mels, batch_first=True).to(device, dtype)  # [b, t, 40]
        # Packing keeps padding out of the recurrence: each utterance's states are its own.
        packed = nn.utils.rnn.pack_padded_sequence(padded, steps, batch_first=True, enforce_sorted=False)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True)  # [b, t, 256]
        outputs = []
        for row, wave in enumerate(waves):
            count = self.num_frames(len(wave))
            picks = (torch.arange(1, count + 1) * self.hop_frames - 1).clamp(max=int(steps[row]) - 1)
            embeds = torch.relu(self.linear(hidden[row, picks]))  # [count, 256]
            outputs.append(nn.functional.normalize(embeds, dim=-1))
        return pad_frames(outputs)

    def config(self) -> dict[str, Any]:
        return {"path": self.path, "hop_frames": self.hop_frames, "seed": self.seed}

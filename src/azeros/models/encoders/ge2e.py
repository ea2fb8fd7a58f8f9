"""The GE2E speaker encoder with resemblyzer's weights: the paralinguistic stand-in of the default model.

Resemblyzer embeds 1.6 s windows ("partials") of 40-bin mel frames with a 3-layer LSTM. Here every output
frame is the embedding of the 1.6 s window around it (shorter utterances use all they have), giving a
frame sequence at 10 Hz that a projector can read like any other encoder's. Only the weights file comes
from the package (it cannot be imported here); the model is written here and loaded with
``weights_only=True``.
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
_PARTIAL_FRAMES = 160  # 1.6 s, the window resemblyzer was trained on
_TARGET_DBFS = -30.0


class GE2EEncoder(SpeechEncoder):
    """GE2E (resemblyzer) speaker embeddings of sliding 1.6 s windows, one every ``hop_frames`` * 10 ms.

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
        return (self.mel_basis @ spec).T.astype(np.float32)  # [t, 40]

    @torch.no_grad()
    def forward(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.linear.weight.device
        dtype = self.linear.weight.dtype
        outputs = []
        for wave in waves:
            mel = torch.from_numpy(self._mel(wave))  # [t, 40]
            total = mel.shape[0]
            width = min(_PARTIAL_FRAMES, total)
            count = self.num_frames(len(wave))
            centres = torch.arange(count) * self.hop_frames + self.hop_frames // 2
            starts = (centres - width // 2).clamp(0, total - width)
            windows = torch.stack([mel[s : s + width] for s in starts.tolist()])  # [count, width, 40]
            _, (hidden, _) = self.lstm(windows.to(device, dtype))
            embeds = torch.relu(self.linear(hidden[-1]))  # [count, 256]
            outputs.append(nn.functional.normalize(embeds, dim=-1))
        return pad_frames(outputs)

    def config(self) -> dict[str, Any]:
        return {"path": self.path, "hop_frames": self.hop_frames, "seed": self.seed}

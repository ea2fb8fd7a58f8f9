"""Acoustic features for the speech encoders, with their frame-count formulas.

* :func:`fbank`: kaldi-compatible 80-bin log-mel filterbank, computed by lhotse's own
  ``Fbank`` with the settings icefall/Zipformer models (TTA, Auden-Voice) are trained on;
  :func:`fbank_batch` pads a batch of them, optionally SpecAugmented (:func:`spec_augment`).
* :func:`whisper_log_mel`: Whisper's log-mel, computed on the utterance alone
  (no padding to 30 s).

Every feature function returns exactly as many frames as its ``*_num_frames``
formula says, so callers can size masks and batches from sample counts alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import torch
from lhotse.dataset import SpecAugment
from lhotse.features.kaldi.extractors import Fbank, FbankConfig
from lhotse.utils import LOG_EPSILON
from transformers.audio_utils import mel_filter_bank

from .io import SAMPLE_RATE

__all__ = [
    "FBANK_DIM",
    "FBANK_PAD_VALUE",
    "fbank",
    "fbank_batch",
    "fbank_num_frames",
    "spec_augment",
    "whisper_log_mel",
    "whisper_num_frames",
]

FBANK_DIM = 80
_FBANK_SHIFT = 160  # 10 ms at 16 kHz
# What a batch holds after each utterance's frames: log(1e-10), lhotse's (and so the reference's) padding.
FBANK_PAD_VALUE = LOG_EPSILON
# The edge reflection (snip_edges=False) of a one-frame wave takes up to 140 samples from it; lhotse
# fails on fewer.
_FBANK_MIN_SAMPLES = 140

_WHISPER_N_FFT = 400  # 25 ms at 16 kHz
_WHISPER_HOP = 160  # 10 ms at 16 kHz


def fbank_num_frames(num_samples: int) -> int:
    """Number of :func:`fbank` frames for a waveform (kaldi, ``snip_edges=False``).

    Kaldi (and lhotse) emit one frame per started shift, rounding half up:
    ``(num_samples + shift // 2) // shift``.

    Args:
        num_samples: Waveform length at 16 kHz.

    Returns:
        The frame count.
    """
    return (num_samples + _FBANK_SHIFT // 2) // _FBANK_SHIFT


def fbank(wave: np.ndarray) -> np.ndarray:
    """Kaldi-compatible 80-bin log-mel filterbank of one utterance, as lhotse's ``Fbank`` computes it.

    lhotse rather than kaldi-native-fbank: the models were trained on lhotse's features, and the two
    libraries' float32 FFTs disagree by up to ~5e-4 in the log of weak bins.

    Args:
        wave: Float waveform ``[samples]`` at 16 kHz in [-1, 1]. It is used at this
            scale (not int16 scale), as lhotse does.

    Returns:
        Natural-log mel energies, float32 ``[fbank_num_frames(samples), 80]``.

    Raises:
        ValueError: for a wave that makes a frame but is shorter than 140 samples (8.75 ms).
    """
    wave = _as_mono_float32(wave)
    if fbank_num_frames(wave.size) == 0:
        return np.zeros((0, FBANK_DIM), dtype=np.float32)
    if wave.size < _FBANK_MIN_SAMPLES:
        raise ValueError(f"fbank needs at least {_FBANK_MIN_SAMPLES} samples for its first frame, got {wave.size}")
    return _fbank_extractor().extract(wave, SAMPLE_RATE)  # [frames, 80]


def fbank_batch(
    waves: Sequence[np.ndarray], augment_seeds: Sequence[int | None] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fbank` of each utterance, padded into one batch.

    Each utterance is computed alone: lhotse's own batched extraction zero-pads the waveforms, which
    changes the last frames of all but the longest (its edge frames reflect the signal instead).

    Args:
        waves: one mono 16 kHz float waveform per utterance, of any lengths.
        augment_seeds: per utterance, ``None`` or the seed of its :func:`spec_augment`.

    Returns:
        ``(features, lengths)``: float32 ``[b, max frames, 80]`` holding :data:`FBANK_PAD_VALUE` after each
        utterance's frames, and int64 ``[b]`` frame counts (:func:`fbank_num_frames` of each).
    """
    seeds = augment_seeds if augment_seeds is not None else [None] * len(waves)
    feats = [torch.from_numpy(fbank(w)) for w in waves]  # each [t_i, 80]
    feats = [f if seed is None else spec_augment(f, seed) for f, seed in zip(feats, seeds, strict=True)]
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True, padding_value=FBANK_PAD_VALUE)
    return batch, lengths  # [b, t, 80], [b]


def spec_augment(feats: torch.Tensor, seed: int) -> torch.Tensor:
    """SpecAugment of one utterance's fbank with the reference's settings (lhotse's ``SpecAugment`` defaults:
    time warp 80, two masks of up to 27 bins, up to ten of up to 100 frames and 15% of them), drawn from
    ``seed`` alone.

    lhotse draws from the global ``random``, NumPy and torch generators: they are seeded for the call and
    given back as they were, so an augmentation neither depends on nor moves anyone else's draws.

    Args:
        feats: ``[t, 80]`` fbank frames.
        seed: the draw.

    Returns:
        The augmented frames ``[t, 80]`` (a new tensor).
    """
    with _global_generators_seeded(seed):
        return SpecAugment(p=1.0)(feats[None])[0]


@contextmanager
def _global_generators_seeded(seed: int) -> Iterator[None]:
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def whisper_num_frames(num_samples: int) -> int:
    """Number of :func:`whisper_log_mel` frames for a waveform.

    The centred STFT yields ``num_samples // hop + 1`` frames and Whisper drops the
    last one.

    Args:
        num_samples: Waveform length at 16 kHz.

    Returns:
        The frame count.
    """
    return num_samples // _WHISPER_HOP


def whisper_log_mel(wave: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Whisper's normalised log-mel spectrogram of one utterance, without padding.

    Follows Whisper's recipe: centred STFT (n_fft 400, hop 160, periodic Hann,
    reflect padding), power spectrum with the last frame dropped, slaney mel
    filters, ``log10`` clamped at 1e-10, dynamic range limited to 8 below this
    utterance's maximum, then ``(x + 4) / 4``. For a 30 s input this equals
    ``WhisperFeatureExtractor``'s output.

    Args:
        wave: Float waveform ``[samples]`` at 16 kHz in [-1, 1]; needs more than
            200 samples (the reflect padding of the centred STFT).
        n_mels: Number of mel bins (80, or 128 for large-v3).

    Returns:
        Float32 ``[n_mels, whisper_num_frames(samples)]``.

    Raises:
        ValueError: If the waveform is too short for the STFT padding.
    """
    wave = _as_mono_float32(wave)
    if wave.size <= _WHISPER_N_FFT // 2:
        raise ValueError(
            f"whisper_log_mel needs more than {_WHISPER_N_FFT // 2} samples, got {wave.size}"
        )
    window = torch.hann_window(_WHISPER_N_FFT)  # periodic, as Whisper uses
    stft = torch.stft(
        torch.from_numpy(wave),
        _WHISPER_N_FFT,
        _WHISPER_HOP,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )  # [201, samples // 160 + 1]
    power = stft[:, :-1].abs() ** 2  # [201, frames]
    mel = _whisper_mel_filters(n_mels).T @ power  # [n_mels, frames]
    log_mel = torch.clamp(mel, min=1e-10).log10()
    log_mel = torch.maximum(log_mel, log_mel.max() - 8.0)
    return ((log_mel + 4.0) / 4.0).numpy().astype(np.float32, copy=False)


def _as_mono_float32(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform [samples], got shape {wave.shape}")
    return np.ascontiguousarray(wave, dtype=np.float32)


@lru_cache(maxsize=1)
def _fbank_extractor() -> Fbank:
    """lhotse's ``Fbank`` with every setting the reference's features use written out (they are also
    lhotse's defaults; a test checks that they still are)."""
    config = FbankConfig(
        sampling_rate=SAMPLE_RATE,
        frame_length=0.025,
        frame_shift=_FBANK_SHIFT / SAMPLE_RATE,
        round_to_power_of_two=True,  # 512-point FFT
        remove_dc_offset=True,
        preemph_coeff=0.97,
        window_type="povey",
        dither=0.0,  # deterministic features
        snip_edges=False,  # frame count depends on the shift only; the edges are reflected
        low_freq=20.0,
        high_freq=-400.0,  # relative to Nyquist: 7600 Hz
        num_filters=FBANK_DIM,
        # The mel energies are floored at float32 eps (log -15.94) before the log; lhotse's
        # energy_floor (1e-10) applies only to the energy term, which fbank leaves out (use_energy=False).
        use_energy=False,
    )
    return Fbank(config)


@lru_cache(maxsize=4)
def _whisper_mel_filters(n_mels: int) -> torch.Tensor:
    filters = mel_filter_bank(
        num_frequency_bins=1 + _WHISPER_N_FFT // 2,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )  # [201, n_mels]
    return torch.from_numpy(filters).to(torch.float32)

"""Acoustic features for the speech encoders, with their frame-count formulas.

* :func:`fbank`: kaldi-compatible 80-bin log-mel filterbank, identical (up to float
  rounding) to lhotse's ``Fbank()`` defaults that icefall/Zipformer models are
  trained on.
* :func:`whisper_log_mel`: Whisper's log-mel, computed on the utterance alone
  (no padding to 30 s).

Every feature function returns exactly as many frames as its ``*_num_frames``
formula says, so callers can size masks and batches from sample counts alone.
"""

from __future__ import annotations

from functools import lru_cache

import kaldi_native_fbank as knf
import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank

from .io import SAMPLE_RATE

__all__ = [
    "FBANK_DIM",
    "fbank",
    "fbank_num_frames",
    "whisper_log_mel",
    "whisper_num_frames",
]

FBANK_DIM = 80
_FBANK_SHIFT = 160  # 10 ms at 16 kHz

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
    """Kaldi-compatible 80-bin log-mel filterbank, matching lhotse's ``Fbank()``.

    Args:
        wave: Float waveform ``[samples]`` at 16 kHz in [-1, 1]. It is used at this
            scale (not int16 scale), as lhotse does.

    Returns:
        Natural-log mel energies, float32 ``[fbank_num_frames(samples), 80]``.
    """
    wave = _as_mono_float32(wave)
    extractor = knf.OnlineFbank(_fbank_options())
    extractor.accept_waveform(SAMPLE_RATE, wave)
    extractor.input_finished()
    num_frames = extractor.num_frames_ready
    if num_frames == 0:
        return np.zeros((0, FBANK_DIM), dtype=np.float32)
    return np.stack([extractor.get_frame(i) for i in range(num_frames)]).astype(
        np.float32, copy=False
    )  # [frames, 80]


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


def _fbank_options() -> knf.FbankOptions:
    """Options equal to lhotse's ``FbankConfig()`` defaults."""
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.frame_opts.dither = 0.0  # deterministic features (knf defaults to dithering)
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.round_to_power_of_two = True
    opts.frame_opts.snip_edges = False  # frame count depends on the shift only
    opts.mel_opts.num_bins = FBANK_DIM
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = -400.0  # relative to Nyquist: 7600 Hz
    opts.use_energy = False
    opts.raw_energy = True
    # lhotse's energy_floor (1e-10) only affects the energy term, unused here; the
    # mel energies are floored at float32 eps before the log in both, which is
    # knf's default ``eps``.
    opts.energy_floor = 1e-10
    opts.use_log_fbank = True
    opts.use_power = True
    return opts


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

"""Loading and validating audio: every input becomes float32 mono 16 kHz in [-1, 1].

Any problem with an item is reported as an :class:`AudioError` whose message names
the item (a file path, or a caller-given name such as a cut id) and the reason, so a
bad file in a large corpus can be found and fixed from the message alone.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "AudioLimits",
    "AudioSource",
    "duration_seconds",
    "load_audio",
    "validate_waveform",
]

SAMPLE_RATE = 16000

AudioSource = Union[str, os.PathLike, bytes, tuple[np.ndarray, int]]


class AudioError(ValueError):
    """Bad audio: unreadable, empty, non-finite, too short or long, or silent.

    Attributes:
        source: The item the error is about (file path or caller-given name).
        reason: What is wrong with it.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):
        # Rebuild from (source, reason) so the error survives pickling across
        # DataLoader worker processes.
        return (type(self), (self.source, self.reason))


@dataclass(frozen=True)
class AudioLimits:
    """Bounds an utterance must satisfy to be accepted.

    A file's sample rate, channel count and duration are checked from its header before anything is
    decoded, and decoding stops once it passes ``max_seconds`` whatever the header claimed, so the
    memory one item takes is bounded by the limits, not by what a small file declares (a few hundred
    KB of FLAC can hold hours of 8-channel silence; a WAV header can claim 8 Hz, which resampling
    would blow up 2000-fold).

    Attributes:
        min_seconds: Shortest accepted duration.
        max_seconds: Longest accepted duration.
        silence_peak: Peak absolute amplitude at or below which audio counts as silent.
        min_sample_rate: Lowest accepted sample rate (Hz) of a file or array.
        max_sample_rate: Highest accepted sample rate (Hz) of a file or array.
        max_channels: Most channels accepted.
    """

    min_seconds: float = 0.1
    max_seconds: float = 30.0
    silence_peak: float = 1e-4
    min_sample_rate: int = 4000
    max_sample_rate: int = 384000
    max_channels: int = 16


def duration_seconds(num_samples: int) -> float:
    """Duration of a 16 kHz waveform.

    Args:
        num_samples: Number of samples at :data:`SAMPLE_RATE`.

    Returns:
        The duration in seconds.
    """
    return num_samples / SAMPLE_RATE


def load_audio(
    source: AudioSource,
    *,
    name: str | None = None,
    limits: AudioLimits = AudioLimits(),
) -> np.ndarray:
    """Decode, mono-mix, resample to 16 kHz and validate one utterance.

    Args:
        source: A path to an audio file, the raw bytes of an encoded file (any format
            soundfile reads: wav, flac, ogg, mp3, ...), or a tuple
            ``(array, sample_rate)`` where the array is ``[samples]`` or
            ``[samples, channels]`` of any float or integer dtype (integers are
            scaled to [-1, 1] by their full-scale value, e.g. 1/32768 for int16).
        name: How to name the item in error messages; defaults to the path, or to
            ``"<bytes>"`` / ``"<array>"`` for in-memory sources.
        limits: Duration and silence bounds.

    Returns:
        The waveform, float32 ``[samples]`` at 16 kHz in [-1, 1].

    Raises:
        AudioError: If the file is missing or undecodable, its header declares a
            sample rate, channel count or duration outside the limits, or the audio
            is empty, contains NaN/Inf, is too short or too long, or is silent.
    """
    label = name if name is not None else _default_label(source)
    wave, sample_rate = _decode(source, label, limits)  # [samples], mono
    # Check before resampling: the resampler would smear a NaN over its whole
    # filter length, cannot process an empty signal, and would spend memory on
    # audio that is refused anyway.
    _check_samples(wave, label)
    _check_duration(wave.size / sample_rate, label, limits)
    if sample_rate != SAMPLE_RATE:
        try:
            wave = soxr.resample(wave, sample_rate, SAMPLE_RATE, quality="HQ")
        except Exception as e:  # soxr raises several types; report them all as bad audio
            raise AudioError(label, f"cannot resample from {sample_rate} Hz ({e})") from e
    # Full-scale input (and float files slightly above it) can ring past +-1 after
    # resampling; clip so the [-1, 1] contract holds.
    wave = np.clip(wave, -1.0, 1.0).astype(np.float32, copy=False)
    return validate_waveform(wave, name=label, limits=limits)


def validate_waveform(
    wave: np.ndarray, *, name: str, limits: AudioLimits = AudioLimits()
) -> np.ndarray:
    """Check a 16 kHz mono waveform against the limits.

    Args:
        wave: Waveform ``[samples]`` at 16 kHz.
        name: How to name the item in error messages (file path, cut id, ...).
        limits: Duration and silence bounds.

    Returns:
        The waveform as a contiguous float32 ``[samples]`` array.

    Raises:
        AudioError: If the waveform is not 1-D, is empty, contains NaN/Inf, is too
            short or too long, or is silent.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioError(name, f"expected a mono waveform [samples], got shape {wave.shape}")
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    _check_samples(wave, name)
    seconds = duration_seconds(wave.size)
    if seconds < limits.min_seconds:
        raise AudioError(
            name, f"too short ({seconds:.3f} s < minimum {limits.min_seconds:g} s)"
        )
    _check_duration(seconds, name, limits)
    peak = float(np.max(np.abs(wave)))
    if peak <= limits.silence_peak:
        raise AudioError(name, f"silent (peak amplitude {peak:.3g} <= {limits.silence_peak:g})")
    return wave


def _default_label(source: AudioSource) -> str:
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    if isinstance(source, tuple):
        return "<array>"
    return os.fspath(source)


def _check_samples(wave: np.ndarray, name: str) -> None:
    """Raise for an empty waveform or one with NaN/Inf samples."""
    if wave.size == 0:
        raise AudioError(name, "empty (0 samples)")
    finite = np.isfinite(wave)
    if not finite.all():
        num_nan = int(np.isnan(wave).sum())
        num_inf = int((~finite).sum()) - num_nan
        found = [f"{n} {kind}" for n, kind in ((num_nan, "NaN"), (num_inf, "Inf")) if n]
        raise AudioError(name, f"contains non-finite samples ({', '.join(found)})")


def _check_duration(seconds: float, name: str, limits: AudioLimits) -> None:
    """Raise for audio longer than the limit."""
    if seconds > limits.max_seconds:
        raise AudioError(name, f"too long ({seconds:.2f} s > maximum {limits.max_seconds:g} s)")


def _check_format(sample_rate: int, channels: int, name: str, limits: AudioLimits) -> None:
    """Raise for a sample rate or channel count outside the limits."""
    if not limits.min_sample_rate <= sample_rate <= limits.max_sample_rate:
        raise AudioError(
            name,
            f"unsupported sample rate {sample_rate} Hz "
            f"(accepted: {limits.min_sample_rate}-{limits.max_sample_rate} Hz)",
        )
    if channels > limits.max_channels:
        raise AudioError(name, f"too many channels ({channels} > maximum {limits.max_channels})")


def _decode(source: AudioSource, label: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Turn any accepted source into float32 mono ``[samples]`` and its rate."""
    if isinstance(source, tuple):
        array, sample_rate = _from_array(source, label)  # [samples, channels]
        _check_format(sample_rate, array.shape[1], label, limits)
        return array.mean(axis=1, dtype=np.float32), sample_rate
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError(label, "empty (0 bytes)")
        return _read(io.BytesIO(source), label, limits)
    if not isinstance(source, (str, os.PathLike)):
        raise AudioError(
            label,
            f"unsupported source type {type(source).__name__} "
            "(expected a path, bytes, or (array, sample_rate))",
        )
    path = Path(source)
    if not path.exists():
        raise AudioError(label, "file not found")
    if not path.is_file():
        raise AudioError(label, "unreadable audio (not a regular file)")
    if path.stat().st_size == 0:
        raise AudioError(label, "empty (0 bytes)")
    return _read(path, label, limits)


def _read(file: Path | io.BytesIO, label: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Decode a file to mono block by block, within the limits.

    The header's rate, channels and duration are checked before any sample is
    decoded; decoding stops as soon as it passes ``max_seconds`` (a header may
    understate the length), and each block is mixed to mono at once, so at most
    ``max_seconds`` of mono float32 plus one block of all channels is held.
    """
    try:
        with sf.SoundFile(file) as sound:
            sample_rate, channels = int(sound.samplerate), int(sound.channels)
            _check_format(sample_rate, channels, label, limits)
            _check_duration(sound.frames / sample_rate, label, limits)
            blocks, count = [], 0
            for block in sound.blocks(blocksize=sample_rate, dtype="float32", always_2d=True):
                blocks.append(block.mean(axis=1, dtype=np.float32))  # [block samples]
                count += blocks[-1].size
                _check_duration(count / sample_rate, label, limits)
    except AudioError:
        raise
    except Exception as e:  # libsndfile raises LibsndfileError, RuntimeError, TypeError, ...
        # libsndfile's own words: its message also holds the repr of the file object (servers show these)
        reason = e.error_string if isinstance(e, sf.LibsndfileError) else str(e)
        raise AudioError(
            label, f"unreadable audio (not a format soundfile can read: {reason})"
        ) from e
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32), sample_rate


def _from_array(source: tuple, label: str) -> tuple[np.ndarray, int]:
    if len(source) != 2:
        raise AudioError(label, "expected a tuple (array, sample_rate)")
    array, sample_rate = source
    is_int = isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, bool)
    if not is_int or sample_rate <= 0:
        raise AudioError(label, f"invalid sample rate {sample_rate!r} (expected a positive int)")
    array = np.asarray(array)
    if array.ndim == 1:
        array = array[:, None]  # [samples, 1]
    elif array.ndim != 2:
        raise AudioError(
            label, f"expected shape [samples] or [samples, channels], got {array.shape}"
        )
    elif array.shape[1] > array.shape[0]:
        # More channels than samples is almost surely a channels-first array.
        raise AudioError(
            label,
            f"array of shape {array.shape} looks channels-first; "
            "expected [samples, channels]",
        )
    return _to_float(array, label), int(sample_rate)  # [samples, channels]


def _to_float(array: np.ndarray, label: str) -> np.ndarray:
    """Convert PCM of any float/int dtype to float32 in the [-1, 1] scale."""
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float32, copy=False)
    if kind == "i":
        full_scale = float(-np.iinfo(array.dtype).min)  # 32768 for int16
        return (array.astype(np.float64) / full_scale).astype(np.float32)
    if kind == "u":
        # Unsigned PCM (e.g. 8-bit WAV) is offset binary: the midpoint is zero.
        half = float(np.iinfo(array.dtype).max // 2 + 1)
        return ((array.astype(np.float64) - half) / half).astype(np.float32)
    raise AudioError(label, f"unsupported sample dtype {array.dtype} (expected float or int)")

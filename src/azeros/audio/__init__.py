"""Audio layer: loading/validating waveforms and computing encoder features."""

from .features import (
    FBANK_DIM,
    FBANK_PAD_VALUE,
    fbank,
    fbank_batch,
    fbank_num_frames,
    spec_augment,
    whisper_log_mel,
    whisper_num_frames,
)
from .io import (
    SAMPLE_RATE,
    AudioError,
    AudioLimits,
    AudioSource,
    duration_seconds,
    load_audio,
    validate_waveform,
)

__all__ = [
    "FBANK_DIM",
    "FBANK_PAD_VALUE",
    "SAMPLE_RATE",
    "AudioError",
    "AudioLimits",
    "AudioSource",
    "duration_seconds",
    "fbank",
    "fbank_batch",
    "fbank_num_frames",
    "load_audio",
    "spec_augment",
    "validate_waveform",
    "whisper_log_mel",
    "whisper_num_frames",
]

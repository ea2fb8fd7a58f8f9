"""Frozen speech encoders behind one interface, built by kind name."""

from __future__ import annotations

from typing import Any

from azeros.llm import resolve_weights
from azeros.models.encoders.base import SpeechEncoder, pad_frames
from azeros.models.encoders.ge2e import GE2EEncoder
from azeros.models.encoders.whisper import WhisperEncoder
from azeros.models.encoders.whisper_ct2 import WhisperCT2Encoder
from azeros.models.encoders.zipformer import ZipformerEncoder

__all__ = [
    "ENCODER_KINDS",
    "GE2EEncoder",
    "SpeechEncoder",
    "WhisperCT2Encoder",
    "WhisperEncoder",
    "ZipformerEncoder",
    "build_encoder",
    "pad_frames",
]

ENCODER_KINDS: dict[str, type[SpeechEncoder]] = {
    cls.kind: cls for cls in (WhisperEncoder, WhisperCT2Encoder, GE2EEncoder, ZipformerEncoder)
}


def build_encoder(kind: str, **options: Any) -> SpeechEncoder:
    """Build an encoder from its kind (``whisper``, ``whisper-ct2``, ``ge2e``, ``zipformer``) and options.

    Raises:
        ValueError: for an unknown kind, naming the known ones.
    """
    cls = ENCODER_KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown encoder kind {kind!r}; known kinds: {', '.join(ENCODER_KINDS)}")
    if isinstance(options.get("path"), str):
        options = {**options, "path": resolve_weights(options["path"])}
    return cls(**options)

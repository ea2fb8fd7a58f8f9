"""Models layer: frozen encoders, projectors, the SpeechLLM that joins them to a frozen LLM, the one batch
builder, and model folders."""

from azeros.models.batch import EncodedAudio, build_batch, encode_audio, render
from azeros.models.encoders import (
    ENCODER_KINDS,
    GE2EEncoder,
    SpeechEncoder,
    WhisperCT2Encoder,
    WhisperEncoder,
    build_encoder,
)
from azeros.models.packing import PrefixStates, shared_prefix
from azeros.models.projector import Projector
from azeros.models.saving import load_model, load_projectors, projector_state, save_model
from azeros.models.speech_llm import EmbeddedBatch, EncoderSpec, ForwardOutput, SpeechLLM, SpeechLLMConfig

__all__ = [
    "ENCODER_KINDS",
    "EmbeddedBatch",
    "EncodedAudio",
    "EncoderSpec",
    "ForwardOutput",
    "GE2EEncoder",
    "PrefixStates",
    "Projector",
    "SpeechEncoder",
    "SpeechLLM",
    "SpeechLLMConfig",
    "WhisperCT2Encoder",
    "WhisperEncoder",
    "build_batch",
    "build_encoder",
    "encode_audio",
    "load_model",
    "load_projectors",
    "projector_state",
    "render",
    "save_model",
    "shared_prefix",
]

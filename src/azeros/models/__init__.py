"""Models layer: frozen encoders, projectors and the SpeechLLM that joins them to a frozen LLM."""

from azeros.models.encoders import (
    ENCODER_KINDS,
    GE2EEncoder,
    SpeechEncoder,
    WhisperCT2Encoder,
    WhisperEncoder,
    build_encoder,
)
from azeros.models.llm import cache_dir, load_llm, load_tokenizer, resolve_dtype
from azeros.models.projector import Projector
from azeros.models.speech_llm import Answer, EncoderSpec, ForwardOutput, SpeechLLM, SpeechLLMConfig, TokenBatch
from azeros.models.weights import EMBEDDED_WEIGHTS, embedded_path, resolve_weights

__all__ = [
    "EMBEDDED_WEIGHTS",
    "ENCODER_KINDS",
    "Answer",
    "EncoderSpec",
    "ForwardOutput",
    "GE2EEncoder",
    "Projector",
    "SpeechEncoder",
    "SpeechLLM",
    "SpeechLLMConfig",
    "TokenBatch",
    "WhisperCT2Encoder",
    "WhisperEncoder",
    "build_encoder",
    "cache_dir",
    "embedded_path",
    "load_llm",
    "load_tokenizer",
    "resolve_dtype",
    "resolve_weights",
]

"""Inference layer: the batching Engine, batch answering of manifests, and the chat API it builds on."""

from azeros.inference.batch import AUDIO_SUFFIXES, InferItem, InferSummary, infer, iter_items
from azeros.inference.engine import Engine, EngineFull, EngineRequest
from azeros.models import Answer, SpeechLLM
from azeros.models.chat import MODE_SYSTEM, ChatSession, GenerationParams, Turn

__all__ = [
    "AUDIO_SUFFIXES",
    "MODE_SYSTEM",
    "Answer",
    "ChatSession",
    "Engine",
    "EngineFull",
    "EngineRequest",
    "GenerationParams",
    "InferItem",
    "InferSummary",
    "SpeechLLM",
    "Turn",
    "infer",
    "iter_items",
]

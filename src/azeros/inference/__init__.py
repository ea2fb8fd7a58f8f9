"""Inference layer: generation, chat sessions that keep their KV cache, streaming, the batching Engine and
batch answering of manifests. The serving and evaluation layers reach models only through here."""

from azeros.inference.chat import ChatSession, Turn, chat, conversation_of, prompt_length
from azeros.inference.engine import Engine, EngineFull, EngineRequest
from azeros.inference.generate import answer_batch, answer_conversations, answer_cross_entropy, generate
from azeros.inference.infer import AUDIO_SUFFIXES, InferItem, InferSummary, infer, iter_items
from azeros.inference.streaming import stream_chat
from azeros.llm import Answer, GenerationParams
from azeros.models import EncoderSpec, SpeechLLM, SpeechLLMConfig, load_model, load_projectors

__all__ = [
    "AUDIO_SUFFIXES",
    "Answer",
    "ChatSession",
    "EncoderSpec",
    "Engine",
    "EngineFull",
    "EngineRequest",
    "GenerationParams",
    "InferItem",
    "InferSummary",
    "SpeechLLM",
    "SpeechLLMConfig",
    "Turn",
    "answer_batch",
    "answer_conversations",
    "answer_cross_entropy",
    "chat",
    "conversation_of",
    "generate",
    "infer",
    "iter_items",
    "load_model",
    "load_projectors",
    "prompt_length",
    "stream_chat",
]

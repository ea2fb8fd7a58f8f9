"""LLM layer: loading any causal LM, where its weights come from, the decode cache, generation parameters,
generation from embeddings and token streaming. It knows nothing of speech: models, target generation and
evaluation share it."""

from azeros.llm.cache import GrowingCache, GrowingLayer, attention_span, cache_keyword
from azeros.llm.generation import Answer, GenerationParams, generate_from_embeddings
from azeros.llm.loading import load_llm, load_tokenizer, resolve_device, resolve_dtype
from azeros.llm.repetition import RepetitionPenalty, default_repetition_penalty, penalize_seen, seen_mask
from azeros.llm.streaming import TextCallback, TokenStreamer
from azeros.llm.weights import (
    EMBEDDED_WEIGHTS,
    JOINED_WEIGHTS,
    cache_dir,
    embedded_path,
    joined_path,
    local_folder,
    resolve_weights,
)

__all__ = [
    "EMBEDDED_WEIGHTS",
    "Answer",
    "GenerationParams",
    "GrowingCache",
    "GrowingLayer",
    "JOINED_WEIGHTS",
    "RepetitionPenalty",
    "TextCallback",
    "TokenStreamer",
    "attention_span",
    "cache_dir",
    "cache_keyword",
    "default_repetition_penalty",
    "embedded_path",
    "generate_from_embeddings",
    "joined_path",
    "load_llm",
    "load_tokenizer",
    "local_folder",
    "penalize_seen",
    "resolve_device",
    "resolve_dtype",
    "resolve_weights",
    "seen_mask",
]

"""Loading the frozen LLM: a hub id, a local folder, a GGUF file, or an embedded alias."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from azeros.hub import cache_dir, load_tokenizer, local_folder, resolve_dtype

__all__ = ["cache_dir", "load_llm", "load_tokenizer", "resolve_dtype"]


def load_llm(source: str, dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, frozen and in eval mode.

    Args:
        source: a hub id, a local folder, a ``.gguf`` file, or an embedded alias such as
            ``"smollm2-135m-instruct"``.
        dtype: the weights' dtype.

    Returns:
        ``(model, tokenizer)``.
    """
    folder = local_folder(source)
    tokenizer = load_tokenizer(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model.requires_grad_(False)
    model.eval()
    return model, tokenizer

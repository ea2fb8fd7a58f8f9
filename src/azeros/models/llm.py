"""Loading the frozen LLM: a hub id, a local folder, a GGUF file, or an embedded alias."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from azeros.models.weights import resolve_weights

__all__ = ["cache_dir", "load_llm", "load_tokenizer", "resolve_dtype"]

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """azeros' cache folder: ``$AZEROS_CACHE`` or ``~/.cache/azeros``."""
    return Path(os.environ.get("AZEROS_CACHE", Path.home() / ".cache" / "azeros"))


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """``"auto"`` is bf16 on a GPU that has it and fp32 elsewhere; names like ``"bf16"`` map to dtypes."""
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype == "auto":
        cuda = torch.device(device).type == "cuda"
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, fp32, bf16 or fp16")
    return names[dtype]


def _gguf_cache(path: Path) -> Path:
    # Dequantizing a GGUF takes tens of seconds; the HF folder it becomes loads in about one.
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "gguf" / f"{path.stem}-{key}"


def _local_folder(source: str) -> str:
    """A folder (or hub id) transformers loads directly; a GGUF file is converted once and cached."""
    resolved = resolve_weights(source)
    if not resolved.endswith(".gguf"):
        return resolved
    path = Path(resolved)
    if not path.is_file():
        raise FileNotFoundError(f"{resolved}: no such GGUF file")
    cached = _gguf_cache(path)
    if (cached / "config.json").is_file():
        return str(cached)
    logger.info("converting %s to a transformers folder in %s (once)", path.name, cached)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # The tensors are already dequantized to fp32; only the GGUF marker blocks saving them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".staging-"))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(cached)  # atomic: a concurrent or killed conversion never leaves half a folder
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    return str(cached)


def load_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """The tokenizer of an LLM source (hub id, folder, GGUF file or embedded alias); it must have a chat
    template, since azeros renders every prompt with it."""
    tokenizer = AutoTokenizer.from_pretrained(_local_folder(source))
    if tokenizer.chat_template is None:
        raise ValueError(f"{source}: the tokenizer has no chat template; azeros renders every prompt with it")
    return tokenizer


def load_llm(source: str, dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, frozen and in eval mode.

    Args:
        source: a hub id, a local folder, a ``.gguf`` file, or an embedded alias such as
            ``"smollm2-135m-instruct"``.
        dtype: the weights' dtype.

    Returns:
        ``(model, tokenizer)``.
    """
    folder = _local_folder(source)
    tokenizer = load_tokenizer(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model.requires_grad_(False)
    model.eval()
    return model, tokenizer

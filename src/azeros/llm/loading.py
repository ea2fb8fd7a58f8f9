"""Loading any causal LM: a hub id, a local folder, a GGUF file or an embedded alias, in one function.

Models (:class:`azeros.models.SpeechLLM`), target generation (``azeros.selfgen``) and evaluation all load
their LLM through :func:`load_llm`, so they read the very same weights and tokenizer.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from azeros.errors import DeviceError
from azeros.llm.weights import local_folder

__all__ = ["load_llm", "load_tokenizer", "resolve_device", "resolve_dtype"]


def load_llm(
    source: str, dtype: str | torch.dtype = torch.float32, device: str | torch.device = "cpu",
    tokenizer_source: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, frozen and in eval mode.

    Args:
        source: a hub id, a local folder, a ``.gguf`` file, or an embedded alias such as
            ``"smollm2-135m-instruct"``.
        dtype: the weights' dtype, or its name (see :func:`resolve_dtype`; ``auto`` is decided for ``device``).
        device: where the weights go.
        tokenizer_source: where the tokenizer is, when not with the weights (the reference's model folders keep it
            beside ``llm/``, not in it).

    Returns:
        ``(model, tokenizer)``.
    """
    folder = local_folder(source)
    tokenizer = load_tokenizer(tokenizer_source or folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=resolve_dtype(dtype, device))
    model.requires_grad_(False)
    model.eval()
    # from_pretrained loads on the CPU; no move then, so that a training run can shard the LLM before any
    # ``to`` carries it whole (the FSDP placement test records every ``Module.to``)
    return (model if torch.device(device).type == "cpu" else model.to(device)), tokenizer


def load_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """The tokenizer of an LLM source (hub id, folder, GGUF file or embedded alias).

    Args:
        source: where the LLM lives.

    Returns:
        The tokenizer; it must have a chat template, since azeros renders every prompt with it.
    """
    tokenizer = AutoTokenizer.from_pretrained(local_folder(source))
    if tokenizer.chat_template is None:
        raise ValueError(f"{source}: the tokenizer has no chat template; azeros renders every prompt with it")
    return tokenizer


def resolve_device(device: str = "auto") -> str:
    """The device to use: ``"auto"`` is ``cuda`` when a GPU is visible and ``cpu`` otherwise.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        DeviceError: when a GPU is asked for and torch cannot use one, saying how to get a GPU build.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        if torch.version.cuda is None:
            raise DeviceError(
                f"device {device!r}: this torch ({torch.__version__}) is built for CPU only; install a CUDA build, "
                "e.g. pip install torch --index-url https://download.pytorch.org/whl/cu124 (see pytorch.org), "
                "or run on cpu"
            )
        raise DeviceError(f"device {device!r}: torch {torch.__version__} has CUDA but sees no GPU (check nvidia-smi "
                          "and CUDA_VISIBLE_DEVICES), or run on cpu")
    return device


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

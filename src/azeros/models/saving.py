"""A model folder: ``config.json``, the projectors in safetensors, and a pointer to (or a copy of) the LLM.

Projector weights keep the reference checkpoints' names (``speech_encoder_projector.linear1.weight``...), so
its projectors load here too. Nothing is ever unpickled from a user's file without ``weights_only=True``.

Two layouts are read and written:

* ``azeros``: ``config.json`` (:class:`SpeechLLMConfig`), ``model.safetensors`` (the projectors) and,
  optionally, the LLM and its tokenizer in ``llm/``;
* ``reference``: the reference implementation's (AudenAI/Auden ``examples/azeros``), as the released AZEROS
  model is laid out: ``config.json`` (``model_type: azeros``, nested ``llm_config``,
  ``speech_encoder_config``, ``paraling_encoder_config`` and ``*_projector_ds_rate``; other keys ignored),
  the tokenizer beside it (with ``<|AUDIO|>``), ``llm/`` (transformers' format, no tokenizer),
  ``speech_encoder/`` (TTA) and ``paraling_encoder/`` (Auden-Voice), each a Zipformer folder, and the
  projectors in the first of ``pretrained.safetensors``, ``model.safetensors``, ``pretrained.pt``,
  ``model.pt`` (possibly wrapped in ``{"state_dict": ...}``), which must hold nothing else.

  The reference trained without a system turn (its own ChatML) but answers with the tokenizer's template,
  which adds Qwen's default system prompt ("You are Qwen, created by Alibaba Cloud. ..."). Such a folder
  answers in its training context by default (``chat_template: chatml``); ``"chat_template": null`` in its
  ``config.json`` gives the reference's inference context instead (the key is azeros' own; the reference
  ignores it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from azeros.errors import ConfigError
from azeros.llm import load_llm
from azeros.models.encoders import ZipformerEncoder
from azeros.models.encoders.zipformer import BATCH_COUNT_KEY, WEIGHT_FILES
from azeros.models.speech_llm import EncoderSpec, SpeechLLM, SpeechLLMConfig

__all__ = ["PROJECTOR_KEYS", "REFERENCE_MODULES", "load_model", "load_projectors", "projector_state", "save_model"]

# The reference's module names per encoder role: its encoder folders, and its projector weights' prefixes
# (kept so that its projectors load here).
REFERENCE_MODULES = {"semantic": "speech_encoder", "paralinguistic": "paraling_encoder"}
PROJECTOR_KEYS = {role: f"{name}_projector" for role, name in REFERENCE_MODULES.items()}
REFERENCE_CHAT_TEMPLATE = "chatml"  # the context the reference trained in (see the module docstring)
AUDIO_TOKEN = "<|AUDIO|>"  # the reference tokenizer's placeholder (azeros needs none: it places audio by position)


def projector_state(model: SpeechLLM) -> dict[str, torch.Tensor]:
    """Projector weights under the reference's names (``speech_encoder_projector.linear1.weight``...).

    This is what every export and checkpoint writes, so it refuses weights that a diverged run left
    non-finite: a NaN model must not be saved as if it were a model.

    Raises:
        ValueError: naming the weights that hold NaN or infinite values.
    """
    state = {
        f"{PROJECTOR_KEYS[role]}.{name}": tensor.detach().contiguous().cpu()
        for role, projector in model.projectors.items()
        for name, tensor in projector.state_dict().items()
    }
    bad = [name for name, tensor in state.items() if not torch.isfinite(tensor).all()]
    if bad:
        raise ValueError(f"refusing to save projector weights with NaN or infinite values: {', '.join(bad)}")
    return state


def load_projectors(
    model: SpeechLLM, path: str | Path, roles: Sequence[str] | None = None, *, strict: bool = False
) -> list[str]:
    """Load projector weights from a file or model folder; every asked projector must load completely.

    Args:
        model: the model whose projectors are set.
        path: a weights file, or a folder holding one of ``model.safetensors``, ``pretrained.safetensors``,
            ``pretrained.pt``, ``model.pt`` (reference checkpoints load too).
        roles: which projectors to load (default: all of the model's).
        strict: the file must hold nothing but these projectors' weights.

    Returns:
        The weight names loaded.

    Raises:
        FileNotFoundError: no weights file.
        ValueError: a projector is missing or partial, a shape differs, or (``strict``) the file holds other
            weights; nothing is loaded then.
    """
    file = _weights_file(Path(path))
    state = _read_weights(file)
    loaded: dict[str, dict[str, torch.Tensor]] = {}
    for role in roles or model.roles:
        prefix = f"{PROJECTOR_KEYS[role]}."
        own = model.projectors[role].state_dict()
        found = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        missing = sorted(set(own) - set(found))
        if missing:
            raise ValueError(f"{file}: the {role} projector is missing {', '.join(prefix + m for m in missing)}")
        for name, tensor in own.items():
            if found[name].shape != tensor.shape:
                raise ValueError(
                    f"{file}: {prefix}{name} has shape {tuple(found[name].shape)}, "
                    f"this model needs {tuple(tensor.shape)}"
                )
        loaded[role] = {k: found[k] for k in own}
    names = [f"{PROJECTOR_KEYS[role]}.{name}" for role, tensors in loaded.items() for name in tensors]
    unexpected = sorted(set(state) - set(names))
    if strict and unexpected:
        raise ValueError(f"{file}: {len(unexpected)} unexpected weights: {', '.join(unexpected[:20])}")
    for role, tensors in loaded.items():  # all checked first: a failure leaves the model untouched
        model.projectors[role].load_state_dict(tensors)
    return names


def save_model(
    model: SpeechLLM, folder: str | Path, *, include_llm: bool = False,
    layout: Literal["azeros", "reference"] = "azeros",
) -> Path:
    """Save a model folder in either layout (see the module docstring).

    Args:
        model: the model.
        folder: where to write.
        include_llm: ``azeros`` layout: also copy the frozen LLM into ``folder/llm`` (otherwise the config
            points to it). The ``reference`` layout always holds everything: LLM, tokenizer and encoders.
        layout: ``azeros``, or ``reference`` (Zipformer encoders and the paper's projector shape only).

    Returns:
        The folder.

    Raises:
        ValueError: non-finite projector weights, or a model the reference layout cannot hold.
    """
    if layout not in ("azeros", "reference"):
        raise ValueError(f"unknown model folder layout {layout!r}; expected 'azeros' or 'reference'")
    state = projector_state(model)  # refuses non-finite weights before anything is written
    folder = Path(folder)
    if layout == "reference":
        _check_reference_shape(model)
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "reference":
        config = _save_reference_parts(model, folder)
    else:
        config = model.config.to_dict()
        if include_llm:
            model.llm.save_pretrained(folder / "llm")
            model.tokenizer.save_pretrained(folder / "llm")
            config["llm"] = "llm"
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return folder


def load_model(folder: str | Path, *, dtype: str | None = None, device: str | torch.device = "cpu") -> SpeechLLM:
    """Load a model folder in either layout (see the module docstring), strictly.

    Args:
        folder: the model folder.
        dtype: override the saved LLM dtype.
        device: where to put the model.

    Raises:
        FileNotFoundError: no ``config.json``, weights file or (reference layout) encoder folder.
        ConfigError: ``config.json`` is not a JSON object.
        ValueError: the weights file is unreadable or does not fit the config (the message names the file).
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; not an azeros model folder")
    try:
        data = json.loads(config_file.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{config_file}: not valid JSON ({error})") from None
    reference = isinstance(data, Mapping) and "speech_encoder_config" in data
    if reference:
        config = _reference_config(folder, data, str(config_file))
    else:
        config = SpeechLLMConfig.from_dict(data, source=str(config_file))
        if (folder / config.llm).is_dir():
            config.llm = str(folder / config.llm)
    if dtype is not None:
        config.dtype = dtype
    llm, tokenizer = load_llm(config.llm, config.dtype, device, tokenizer_source=str(folder) if reference else None)
    model = SpeechLLM(config, llm=llm, tokenizer=tokenizer)
    load_projectors(model, folder, strict=reference)
    if (folder / "llm").is_dir():
        model.config.llm = "llm"
    return model.to(device)


def _reference_config(folder: Path, data: Mapping[str, Any], source: str) -> SpeechLLMConfig:
    """The :class:`SpeechLLMConfig` of a folder in the reference layout (its encoders read from their folders)."""
    encoders, rates = [], set()
    for role, name in REFERENCE_MODULES.items():
        nested = data.get(f"{name}_config")
        if nested is None and role == "paralinguistic":  # a stage-1 model: one encoder
            continue
        kind = nested.get("model_type") if isinstance(nested, Mapping) else None
        if kind != "zipformer":
            raise ConfigError(f"{source}: {name}_config has model_type {kind!r}; azeros reads the reference's "
                              "Zipformer encoders only")
        if not (folder / name).is_dir():
            raise FileNotFoundError(f"{folder}: no {name}/ folder (the encoder's config.json and weights)")
        encoders.append(EncoderSpec("zipformer", role, {"path": str(folder / name)}))
        rates.add(data.get(f"{name}_projector_ds_rate", 4))
    if len(rates) != 1:
        raise ConfigError(f"{source}: the projectors stack different numbers of frames ({sorted(rates)}); "
                          "azeros stacks one number for both")
    return SpeechLLMConfig(llm=str(folder / "llm"), encoders=encoders, projector_stack=int(rates.pop()),
                           chat_template=data.get("chat_template", REFERENCE_CHAT_TEMPLATE))


def _check_reference_shape(model: SpeechLLM) -> None:
    others = [f"{role} {encoder.kind}" for role, encoder in model.encoders.items()
              if not isinstance(encoder, ZipformerEncoder)]
    if others:
        raise ValueError(f"the reference layout holds Zipformer encoders; this model has {', '.join(others)}")
    width = model.llm.get_input_embeddings().embedding_dim
    if (model.config.projector_compress or model.config.projector_context_layers
            or model.config.projector_hidden not in (None, width)):
        raise ValueError("the reference layout holds Linear-ReLU-Linear projectors as wide as the LLM, uncompressed")


def _save_reference_parts(model: SpeechLLM, folder: Path) -> dict[str, Any]:
    """Write the LLM, the tokenizer and the encoders as the reference does; return its ``config.json``."""
    model.llm.save_pretrained(folder / "llm")
    tokenizer = model.tokenizer
    if AUDIO_TOKEN not in tokenizer.get_vocab():
        tokenizer = copy.deepcopy(tokenizer)  # the model's own tokenizer stays as it is
        tokenizer.add_special_tokens({"additional_special_tokens": [AUDIO_TOKEN]})
    tokenizer.save_pretrained(folder)
    config: dict[str, Any] = {
        "model_type": "azeros", "use_flash_attn": False,
        "exclude_from_checkpoint": ["llm", *(REFERENCE_MODULES[role] for role in model.roles)],
        "llm_config": model.llm.config.to_diff_dict(), "paraling_encoder_config": None,
    }
    for role, encoder in model.encoders.items():
        name = REFERENCE_MODULES[role]
        encoder_config = {"model_type": "zipformer", **encoder.model.config.to_dict()}
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "config.json").write_text(json.dumps(encoder_config, indent=2) + "\n")
        weights = {k: v.detach().cpu().contiguous() for k, v in encoder.model.state_dict().items()}
        save_file({**weights, BATCH_COUNT_KEY: encoder.batch_count}, folder / name / "model.safetensors",
                  metadata={"format": "pt"})
        config[f"{name}_config"] = encoder_config
        config[f"{name}_projector_ds_rate"] = model.config.projector_stack
    config["chat_template"] = model.config.chat_template
    return config


def _weights_file(path: Path) -> Path:
    if path.is_file():
        return path
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path}: no projector weights (looked for {', '.join(WEIGHT_FILES)})")


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    if file.suffix == ".safetensors":
        try:
            return load_file(file)
        except SafetensorError as error:  # its message names no file
            raise ValueError(f"{file}: not a readable safetensors file ({error})") from None
    state = torch.load(file, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    return state.get("state_dict", state) if isinstance(state, dict) else state

"""A model folder: ``config.json``, the projectors in safetensors, and a pointer to (or a copy of) the LLM.

Projector weights keep the reference checkpoints' names (``speech_encoder_projector.linear1.weight``...), so
its projectors load here too. Nothing is ever unpickled from a user's file without ``weights_only=True``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from azeros.errors import ConfigError
from azeros.llm import load_llm
from azeros.models.speech_llm import SpeechLLM, SpeechLLMConfig

__all__ = ["PROJECTOR_KEYS", "load_model", "load_projectors", "projector_state", "save_model"]

# Weight names of the reference checkpoints, kept so their projectors load here.
PROJECTOR_KEYS = {"semantic": "speech_encoder_projector", "paralinguistic": "paraling_encoder_projector"}
WEIGHT_FILES = ("model.safetensors", "pretrained.safetensors", "pretrained.pt", "model.pt")


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


def load_projectors(model: SpeechLLM, path: str | Path, roles: Sequence[str] | None = None) -> list[str]:
    """Load projector weights from a file or model folder; every asked projector must load completely.

    Args:
        model: the model whose projectors are set.
        path: a weights file, or a folder holding one of ``model.safetensors``, ``pretrained.safetensors``,
            ``pretrained.pt``, ``model.pt`` (reference checkpoints load too).
        roles: which projectors to load (default: all of the model's).

    Returns:
        The weight names loaded.

    Raises:
        FileNotFoundError: no weights file.
        ValueError: a projector is missing or partial, or a shape differs; nothing is loaded then.
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
    for role, tensors in loaded.items():  # all checked first: a failure leaves the model untouched
        model.projectors[role].load_state_dict(tensors)
    return [f"{PROJECTOR_KEYS[role]}.{name}" for role, tensors in loaded.items() for name in tensors]


def save_model(model: SpeechLLM, folder: str | Path, *, include_llm: bool = False) -> Path:
    """Save ``config.json`` and the projectors (``model.safetensors``).

    Args:
        model: the model.
        folder: where to write.
        include_llm: also copy the frozen LLM into ``folder/llm`` (otherwise the config points to it).

    Returns:
        The folder.
    """
    state = projector_state(model)  # refuses non-finite weights before anything is written
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    if include_llm:
        model.llm.save_pretrained(folder / "llm")
        model.tokenizer.save_pretrained(folder / "llm")
        config["llm"] = "llm"
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return folder


def load_model(folder: str | Path, *, dtype: str | None = None, device: str | torch.device = "cpu") -> SpeechLLM:
    """Load a model folder written by :func:`save_model`.

    Args:
        folder: the model folder.
        dtype: override the saved LLM dtype.
        device: where to put the model.

    Raises:
        FileNotFoundError: no ``config.json`` or no weights file.
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
    config = SpeechLLMConfig.from_dict(data, source=str(config_file))
    if dtype is not None:
        config.dtype = dtype
    if (folder / config.llm).is_dir():
        config.llm = str(folder / config.llm)
    llm, tokenizer = load_llm(config.llm, config.dtype, device)
    model = SpeechLLM(config, llm=llm, tokenizer=tokenizer)
    load_projectors(model, folder)
    if (folder / "llm").is_dir():
        model.config.llm = "llm"
    return model.to(device)


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

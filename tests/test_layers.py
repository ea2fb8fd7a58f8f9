"""The layering of DESIGN.md: a module never imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "azeros"

# layer -> layers it may import directly (DESIGN.md); what those may import comes with them.
DIRECT = {
    "text": set(),
    "audio": {"text"},
    "data": {"text", "audio"},
    "models": {"text", "audio"},
    "selfgen": {"text", "data"},
    "training": {"models", "data"},
    "inference": {"models", "data"},
    "serve": {"inference"},
    "eval": {"inference", "data"},
}
# importable from every layer; they import only azeros.errors (the one base module that imports no azeros)
BASE = {"__init__", "errors", "hub", "kv_cache", "repetition"}
TOP = {"cli", "demo", "pipeline"}  # entry points: may import anything
PURE_PYTHON = {"text"}  # no torch, numpy or transformers at all


def allowed(layer: str) -> set[str]:
    """The layers reachable from ``layer`` through DIRECT, plus itself."""
    seen, todo = {layer}, [layer]
    while todo:
        for lower in DIRECT[todo.pop()]:
            if lower not in seen:
                seen.add(lower)
                todo.append(lower)
    return seen


def imported_modules(source: str) -> set[str]:
    """Every absolute module name a piece of source imports (relative imports stay in their package)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(layer: str, source: str) -> list[str]:
    """The imports of a module in ``layer`` that break the layering."""
    bad = []
    for name in sorted(imported_modules(source)):
        parts = name.split(".")
        if layer in PURE_PYTHON and parts[0] in {"torch", "numpy", "transformers"}:
            bad.append(name)
        if parts[0] != "azeros" or len(parts) < 2 or layer in TOP:
            continue
        target = parts[1]
        if target in BASE or target in allowed(layer):
            continue
        if target in DIRECT or target in TOP:
            bad.append(name)
    return bad


def layer_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def test_no_module_imports_from_a_layer_above():
    checked = 0
    problems = {}
    for path in SRC.rglob("*.py"):
        layer = layer_of(path)
        if layer in BASE:
            own = [n for n in imported_modules(path.read_text()) if n.startswith("azeros.")]
            assert all(n.startswith("azeros.errors") for n in own) and not (layer == "errors" and own), path
            continue
        assert layer in DIRECT or layer in TOP, f"{path}: module outside the layers of DESIGN.md"
        found = violations(layer, path.read_text())
        if found:
            problems[str(path.relative_to(SRC))] = found
        checked += 1
    assert checked >= 10
    assert not problems, f"imports from a layer above: {problems}"


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("text", "from azeros.models import SpeechLLM", ["azeros.models", "azeros.models.SpeechLLM"]),
        ("text", "import torch", ["torch"]),
        ("models", "from azeros.inference import Engine", ["azeros.inference", "azeros.inference.Engine"]),
        ("selfgen", "import azeros.models.llm", ["azeros.models.llm"]),
        ("serve", "from azeros.text import normalize_text", []),  # transitively below serve
        ("training", "from azeros.data import manifest", []),
        ("models", "from . import projector", []),
    ],
)
def test_the_checker_catches_upward_imports(layer, source, expected):
    assert violations(layer, source) == expected

"""The layering of docs/design.md: a module imports only from the layers its own may use, and nothing imports in
a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "azeros"

# layer -> every layer its modules may import (docs/design.md). Listed in full, not inherited through the
# layers below: serve and eval reach models only through inference. errors and config are importable everywhere.
ALLOWED = {
    "errors": set(),
    "config": {"errors"},
    "text": {"config", "errors"},
    "llm": {"text", "config", "errors"},
    "audio": {"text", "config", "errors"},
    "data": {"text", "audio", "config", "errors"},
    "models": {"text", "audio", "llm", "config", "errors"},
    "selfgen": {"text", "audio", "data", "llm", "config", "errors"},
    "training": {"models", "data", "text", "audio", "llm", "config", "errors"},
    "inference": {"models", "data", "text", "audio", "llm", "config", "errors"},
    "serve": {"inference", "text", "audio", "llm", "config", "errors"},
    "eval": {"inference", "data", "text", "audio", "llm", "config", "errors"},
}
TOP = {"__init__", "cli", "pipeline"}  # the package itself and its entry points: may import anything
PURE_PYTHON = {"text"}  # no torch, numpy or transformers at all


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
        if target != layer and target not in ALLOWED[layer]:
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
        assert layer in ALLOWED or layer in TOP, f"{path}: module outside the layers of docs/design.md"
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
        ("selfgen", "import azeros.models.batch", ["azeros.models.batch"]),
        ("serve", "from azeros.models import SpeechLLM", ["azeros.models", "azeros.models.SpeechLLM"]),  # via inference
        ("eval", "from azeros.inference import SpeechLLM", []),
        ("llm", "from azeros.audio import load_audio", ["azeros.audio", "azeros.audio.load_audio"]),
        ("serve", "from azeros.text import normalize_text", []),  # transitively below serve
        ("training", "from azeros.data import manifest", []),
        ("models", "from . import projector", []),
    ],
)
def test_the_checker_catches_upward_imports(layer, source, expected):
    assert violations(layer, source) == expected


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _load_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when a module loads: its top level, not functions or ``if TYPE_CHECKING:``."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [n for h in node.handlers for n in h.body]
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the azeros modules loading it loads first (a package's ``__init__`` counts as the package)."""
    modules = {_module_name(path): path for path in SRC.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in _load_time_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif node.level == 0 and node.module:
                wanted = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                          for a in node.names]
            else:
                continue
            for target in wanted:
                parts = target.split(".")
                # importing a.b.c loads a.b first, unless a.b is a package this very module belongs to
                for depth in range(2, len(parts) + 1):
                    prefix = ".".join(parts[:depth])
                    if prefix in modules and not name.startswith(prefix + ".") and prefix != name:
                        targets.add(prefix)
        graph[name] = targets
    return graph


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) >= 60 and "azeros.llm.cache" in graph
    state: dict[str, str] = {}  # module -> "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_design_map_names_every_module_and_nothing_else():
    design = (SRC.parents[1] / "docs" / "design.md").read_text()
    block = design.split("### Module map", 1)[1].split("```")[1]
    mapped = set()
    for line in block.strip().splitlines():
        folder, *files = line.split()
        prefix = "" if folder == "./" else folder
        mapped.update(f"{prefix}{name}" for name in files)
    actual = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.name != "__init__.py"}
    assert mapped == actual, f"docs/design.md's map lacks {sorted(actual - mapped)}, names missing {sorted(mapped - actual)}"

"""The one config system of every command: YAML read into typed dataclasses, dotted ``key=value`` overrides.

A config is a dataclass whose fields may be numbers, strings, booleans, ``Literal`` choices, lists, tuples,
mappings, unions with ``None`` and nested dataclasses (sections). Reading a tree into one converts every value
to its field's type, refuses unknown keys (a typo must not be silently ignored) and names the key, the value
and the type expected when a value does not fit; nothing is guessed beyond numbers written as text. The
training recipe (:class:`azeros.training.TrainRecipe`), the pipeline recipe (:class:`azeros.pipeline.PipelineRecipe`)
and the evaluation config (:class:`azeros.eval.EvalConfig`) are all read this way, with the same overrides:
``optim.lr=3e-4``, ``stage1.run.max_steps=20``, ``judge.seed=1``. A value that is exactly ``${dotted.key}``
takes that key's value (after the overrides), so a recipe names a setting once (``llm: ${generate.model}``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from azeros.errors import ConfigError

__all__ = ["apply_override", "config_tree", "describe_changes", "load_config", "parse_config", "read_tree", "set_key",
           "tree_changes"]

Config = TypeVar("Config")


def _type_name(annotation: Any) -> str:
    """``int | None`` -> ``"int or null"``; ``Literal["a", "b"]`` -> ``"one of a, b"``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if arg is type(None) else _type_name(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (list, tuple):
        return f"a list of {_type_name(args[0])}" + (f" ({len(args)} items)" if origin is tuple else "")
    if origin is dict:
        return "a mapping"
    return "a mapping" if dataclasses.is_dataclass(annotation) else getattr(annotation, "__name__", str(annotation))


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """``value`` as the type ``annotation`` names, or one :class:`ConfigError` naming key, value and type.

    Numbers written as text (``"3e-4"``, which YAML reads as a string) become numbers; a whole float becomes
    an int; a number becomes a string where one is expected; nothing else is guessed.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except ConfigError:
                continue
    elif annotation is Any:
        return value
    elif origin is Literal:
        if value in args:
            return value
    elif dataclasses.is_dataclass(annotation):
        return parse_config(annotation, value, key)
    elif origin in (list, tuple) and isinstance(value, (list, tuple)):
        if origin is tuple and len(value) != len(args):
            raise ConfigError(f"{key}={value!r}: expected {_type_name(annotation)}")
        items = args if origin is tuple else [args[0]] * len(value)
        return origin(_convert(item, kind, f"{key}[{i}]") for i, (item, kind) in enumerate(zip(value, items)))
    elif origin is dict and isinstance(value, dict):
        return {name: _convert(item, args[1], f"{key}.{name}") for name, item in value.items()}
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation in (int, float) and not isinstance(value, bool):
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            number = None
        if annotation is float and isinstance(number, (int, float)):
            return float(number)
        if annotation is int and isinstance(number, (int, float)) and float(number).is_integer():
            return int(number)
    elif annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{key}={value!r}: expected {_type_name(annotation)}")


def parse_config(cls: type[Config], tree: Any, where: str = "") -> Config:
    """A config dataclass from a YAML tree: unknown keys refused, every value typed.

    An empty section (``tsit_s:`` in YAML, read as ``None``) takes every default. A section class may name the
    field a bare value stands for in a ``SHORTHAND`` class attribute (a training manifest's path: ``manifest``).

    Args:
        cls: the dataclass.
        tree: its YAML tree (a mapping).
        where: the dotted key of this section, for messages (``""``: the whole config).

    Raises:
        ConfigError: naming the key, the value and the type expected, or the unknown and missing keys.
    """
    shorthand = getattr(cls, "SHORTHAND", None)
    if shorthand is not None and isinstance(tree, str):
        tree = {shorthand: tree}
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{where}={tree!r}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(tree) - set(fields))
    if unknown:
        raise ConfigError(f"{where + ': ' if where else ''}unknown keys {unknown}; known: {sorted(fields)}")
    missing = [name for name, f in fields.items() if name not in tree
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where + ': ' if where else ''}{', '.join(missing)} must be set")
    prefix = f"{where}." if where else ""
    return cls(**{name: _convert(value, hints[name], prefix + name) for name, value in tree.items()})


def set_key(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key (``judge.seed``) in a YAML tree, making the sections on its path.

    Raises:
        ConfigError: when a key on the path holds a value, not a section.
    """
    *parents, leaf = key.split(".")
    node = tree
    for depth, part in enumerate(parents):
        if node.get(part) is None:  # absent, or an empty YAML section
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parents[:depth + 1])} is {node!r}, not a section")
    node[leaf] = value


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Set a dotted ``key=value`` in a YAML tree (the value parsed as YAML: ``3e-4``, ``[a, b]``, ``null``).

    The value's type is settled when the tree is read into a config (:func:`parse_config`).

    Raises:
        ConfigError: when the assignment is not ``key=value`` or a key on the path holds a value, not a section.
    """
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {assignment!r} is not key=value")
    try:
        value = yaml.safe_load(raw)  # "[a, b]" -> list, "null" -> None, "3e-4" -> str (typed later)
    except yaml.YAMLError as error:
        raise ConfigError(f"override {assignment!r}: the value is not YAML ({error.problem})") from None
    try:
        set_key(tree, key.strip(), value)
    except ConfigError as error:
        raise ConfigError(f"override {assignment!r}: {error}") from None


def read_tree(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A YAML file's mapping of sections (an empty file is an empty mapping).

    Raises:
        FileNotFoundError: when the file does not exist (``what`` names it: "recipe", "pipeline recipe").
        ConfigError: when it is not YAML, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(tree).__name__}")
    return tree


def load_config(cls: type[Config], tree: dict[str, Any], overrides: typing.Sequence[str] = (),
                source: str = "") -> Config:
    """A typed, checked config from a tree and ``key=value`` overrides applied in order (the tree is left as it was).

    A config class with a ``check()`` method (settings that cannot work together) is checked too.

    Args:
        cls: the config dataclass.
        tree: the YAML tree (from :func:`read_tree`, or ``{}`` for the defaults).
        overrides: dotted ``key=value`` assignments.
        source: what the tree came from (a file name), put before every message.

    Raises:
        ConfigError: on a malformed override, an unknown key, a value of the wrong type or a failed check.
    """
    tree = typing.cast(dict, _plain(tree))  # a copy: overrides never reach the caller's tree
    try:
        for assignment in overrides:
            apply_override(tree, assignment)
        tree = _interpolate(tree, tree)
        config = parse_config(cls, tree)
        if hasattr(config, "check"):
            config.check()
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}" if source else str(error)) from None
    return config


_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def _interpolate(value: Any, root: dict[str, Any], chain: tuple[str, ...] = ()) -> Any:
    """``value`` with every string that is exactly ``${dotted.key}`` replaced by that key's value in ``root``.

    Raises:
        ConfigError: for a reference to a missing key, or references that form a cycle.
    """
    if isinstance(value, dict):
        return {key: _interpolate(item, root, chain) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, root, chain) for item in value]
    match = _REFERENCE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return value
    key = match.group(1)
    if key in chain:
        raise ConfigError(f"${{{key}}}: the references form a cycle ({' -> '.join((*chain, key))})")
    node: Any = root
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"${{{key}}}: no such key in this config")
        node = node[part]
    return _interpolate(node, root, (*chain, key))


def config_tree(config: Any) -> dict[str, Any]:
    """A config as a plain YAML tree (tuples as lists) that reads back equal: what a run folder saves."""
    return _plain(dataclasses.asdict(config))


def tree_changes(saved: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings that differ between two config trees, ``{dotted key: (saved, now)}``, sorted by key.

    A key missing from either side (a tree saved by another azeros version) counts as changed.
    """
    before, after = _flatten(saved), _flatten(now)
    return {key: (before.get(key), after.get(key)) for key in sorted(before.keys() | after.keys())
            if before.get(key, _ABSENT) != after.get(key, _ABSENT)}


def describe_changes(changes: dict[str, tuple[Any, Any]], most: int = 4) -> str:
    """``key (saved -> now), ...`` for the first ``most`` changes of :func:`tree_changes`, then how many more."""
    shown = [f"{key} ({before!r} -> {now!r})" for key, (before, now) in list(changes.items())[:most]]
    more = f" and {len(changes) - most} more" if len(changes) > most else ""
    return ", ".join(shown) + more


_ABSENT = object()


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-3}}`` -> ``{"optim.lr": 1e-3}``; lists are values."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _plain(value: Any) -> Any:
    """Tuples as lists, all the way down (and a copy of every mapping and list)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value

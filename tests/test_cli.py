"""The ``azeros`` command line itself: version, help, and errors a user can fix said in one line."""

from __future__ import annotations

import argparse

import pytest
import torch
import yaml

from azeros import __version__
from azeros.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"azeros {__version__}\n"


def test_every_help_shows_the_defaults():
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"generate", "train", "cache", "pipeline", "eval", "infer", "chat", "serve"} <= commands.keys()
    for name, parser in commands.items():
        text = "".join(parser.format_help().split())  # wrapping may split a long default
        for action in parser._actions:
            if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
                assert f"(default:{action.default})".replace(" ", "") in text or "default" in (action.help or ""), (name, action.dest)
            if action.dest == "device":  # one device default everywhere
                assert action.default == "auto" and "auto (cuda if present, else cpu)" in action.help, name


def test_missing_manifest_is_one_line_and_exit_2_unless_debug(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    missing = tmp_path / "missing.jsonl.gz"
    recipe.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "data": {"train": [str(missing)]}}))
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("azeros train: error: manifests not found") and str(missing) in err
    assert "Traceback" not in err
    with pytest.raises(FileNotFoundError):
        main(["train", str(recipe), "--debug"])


def test_an_os_error_reads_as_path_and_reason_not_a_python_repr(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert main(["generate", str(missing), f"out={tmp_path / 'out'}"]) == 2
    assert capsys.readouterr().err == f"azeros generate: error: {missing}: no such file or directory\n"


def test_bad_override_is_one_line_naming_the_key(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "data": {"train": ["x.jsonl.gz"]}}))
    assert main(["train", str(recipe), "run.max_steps=ten"]) == 2
    assert capsys.readouterr().err == "azeros train: error: r.yaml: run.max_steps='ten': expected int\n"


def test_cuda_on_a_cpu_build_says_how_to_install_gpu_torch(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    assert main(["infer", str(tmp_path), str(tmp_path / "a.wav"), "-o", str(tmp_path / "o.jsonl"),
                 "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "built for CPU only" in err and "pip install torch --index-url" in err


def test_a_missing_init_from_is_refused_before_any_model_loads(tmp_path, capsys, monkeypatch):
    manifest = tmp_path / "targets.jsonl.gz"
    manifest.touch()
    stage2 = {"output_dir": str(tmp_path / "out"), "data": {"train": [str(manifest)]},
              "model": {"encoders": [{"kind": "whisper-ct2", "role": "semantic"}, {"kind": "ge2e", "role": "paralinguistic"}],
                        "init_from": str(tmp_path / "stage1" / "final"), "init_roles": ["semantic"],
                        "train_roles": ["paralinguistic"]}}
    recipe = tmp_path / "stage2.yaml"
    recipe.write_text(yaml.safe_dump(stage2))

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the inputs were checked")

    monkeypatch.setattr("azeros.training.loop.build_model", no_model)
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err == (f"azeros train: error: model.init_from {tmp_path / 'stage1' / 'final'} not found: the semantic "
                   "projector loads from it (the `final` folder of a finished stage-1 run: train the recipe that "
                   "makes it first)\n")

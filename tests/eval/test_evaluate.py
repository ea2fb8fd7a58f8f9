"""``azeros eval``'s one typed config: flags and ``key=value`` overrides fill :class:`EvalConfig`, typed, and
the command calls one library function with it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import azeros.eval
import azeros.pipeline
from azeros.cli import build_parser, main
from azeros.config import load_config
from azeros.eval import EvalConfig, EvalOutcome
from azeros.errors import ConfigError


def _eval_parser() -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    return commands["eval"]


def _key(config: EvalConfig, key: str):
    value = config
    for name in key.split("."):
        value = getattr(value, name)
    return value


def test_every_eval_flag_defaults_to_the_configs_own_default():
    # the flags' defaults are written out (importing azeros.eval would slow `azeros --help` by seconds), so
    # this keeps them from drifting away from the config's
    defaults = EvalConfig()
    keys = _eval_parser().get_default("config_keys")
    assert len(keys) >= 25
    actions = {action.dest: action for action in _eval_parser()._actions}
    for dest, (key, convert) in keys.items():
        assert convert(actions[dest].default) == _key(defaults, key), (dest, key)


@pytest.fixture
def ran(monkeypatch):
    """Runs ``azeros eval`` with the library function replaced by one that records the config it is given."""
    seen = []

    def record(config, models=None):
        seen.append(config)
        return EvalOutcome("| table |", Path(config.out), 0.0)

    monkeypatch.setattr(azeros.eval, "evaluate", record)
    monkeypatch.setattr(azeros.pipeline, "compare", record)
    return seen


def test_flags_and_overrides_fill_one_typed_config(ran, capsys):
    assert main(["eval", "held-out", "judge.seed=3", "sizes.open_ended=8", "max_new_tokens=1e2",
                 "--systems", "text,SIFT_s=exp/sift", "--judge-temperature", "0.5", "--batch-size", "4",
                 "--no-progress", "--no-real"]) == 0
    (config,) = ran
    assert config.what == "held-out" and config.systems == ["text", "SIFT_s=exp/sift"]
    assert config.judge.seed == 3 and config.sizes.open_ended == 8 and config.max_new_tokens == 100
    assert type(config.max_new_tokens) is int and config.judge.temperature == 0.5 and config.batch_size == 4
    assert config.progress is False and config.real is False and config.sizes.instructions == 25
    assert capsys.readouterr().out.startswith("| table |\n")


def test_an_override_wins_over_its_flag(ran):
    assert main(["eval", "mini", "batch_size=2", "--batch-size", "4"]) == 0
    assert ran[0].batch_size == 2


def test_compare_is_run_by_the_pipeline_which_trains_its_models(ran):
    assert main(["eval", "compare", "--pipeline", "recipes/mini.yaml", "--set", "stage1.run.max_steps=5"]) == 0
    assert ran[0].what == "compare" and ran[0].pipeline_overrides == ["stage1.run.max_steps=5"]


@pytest.mark.parametrize(("argv", "message"), [
    (["judge.seed=three"], "judge.seed='three': expected int"),
    (["--batch-size", "ten"], "batch_size='ten': expected int"),
    (["--batch-size", "0"], "batch_size=0: must be at least 1"),
    (["judge.sead=1"], "judge: unknown keys ['sead']; known: ['api_key_env', 'concurrency', 'model', 'seed', 'temperature', 'url']"),
    (["reference=audio"], "reference='audio': expected one of text, text-sp"),
    (["sizes=4"], "sizes=4: expected a mapping"),
    (["--set", "run.max_steps=1"], "pipeline_overrides (--set) without a pipeline recipe (--pipeline)"),
])
def test_a_bad_value_is_one_line_naming_the_key(ran, capsys, argv, message):
    assert main(["eval", "mini", *argv]) == 2
    assert capsys.readouterr().err == f"azeros eval: error: {message}\n"
    assert not ran  # nothing ran


def test_curve_needs_a_run():
    with pytest.raises(ConfigError, match=r"curve: run_dir \(--run\)"):
        load_config(EvalConfig, {"what": "curve"})
    assert load_config(EvalConfig, {"what": "curve"}, ["run_dir=exp/mini/stage1"]).run_dir == "exp/mini/stage1"


def test_compared_models_must_be_named():
    with pytest.raises(ConfigError, match=r"models: \['exp/model'\] must each be NAME=RECIPE.yaml or NAME=MODEL_DIR"):
        load_config(EvalConfig, {"what": "compare", "models": ["exp/model"]})

"""``azeros generate``'s feedback and settings: one typed config, the answer limit per device, the progress
bar's total and rate, the resume line, and the refusal to mix settings in one output."""

from __future__ import annotations

import logging

import pytest
import torch
from lhotse import CutSet

from azeros.cli import main
from azeros.data import DatasetSpec
from azeros.errors import ConfigError
from azeros.selfgen import GenerateConfig, Request, answer_limit, load_generate_job, run_generation
from azeros.selfgen.transformers_backend import TransformersBackend
from azeros.text import get_mode, target_messages
from tests.conftest import tiny_llm
from tests.selfgen.test_selfgen import EchoBackend, synthetic_cuts


@pytest.fixture(autouse=True)
def fresh_logs():
    """The azeros logger as the library leaves it: ``main`` points it at the stderr of the test that called it."""
    logger = logging.getLogger("azeros")
    logger.handlers[:], logger.propagate = [], True
    yield
    logger.handlers[:], logger.propagate = [], True


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cuts")
    path = folder / "cuts.jsonl.gz"
    CutSet.from_cuts(synthetic_cuts(8, folder / "a.wav")).to_file(path)
    return path


def test_overrides_are_typed_and_a_bad_one_is_one_error_naming_the_key(cuts, tmp_path):
    job = load_generate_job(["modes=[sift_s,sit_sp]", "max_new_tokens=24", "openai.timeout=5", "limit=3"],
                            data=str(cuts), out=str(tmp_path))
    assert job.modes == ["sift_s", "sit_sp"] and job.max_new_tokens == 24 and job.openai.timeout == 5.0
    with pytest.raises(ConfigError, match=r"max_new_tokens='many': expected int or null"):
        load_generate_job(["max_new_tokens=many"], data=str(cuts), out=str(tmp_path))
    with pytest.raises(ConfigError, match=r"unknown keys \['max_tokens'\]"):
        load_generate_job(["max_tokens=3"], data=str(cuts), out=str(tmp_path))
    with pytest.raises(ConfigError, match="batch_size=0: must be at least 1"):
        load_generate_job(["batch_size=0"], data=str(cuts), out=str(tmp_path))
    with pytest.raises(ConfigError, match="out must be set"):
        load_generate_job([], data=str(cuts))


def test_the_answer_limit_default_is_sized_per_device_and_printed(cuts, tmp_path, monkeypatch, capsys):
    def limit(*overrides):
        return answer_limit(load_generate_job(list(overrides), data=str(cuts), out=str(tmp_path)))

    assert limit("device=cpu") == (256, "the default on cpu; max_new_tokens=N sets it")
    assert limit("device=cpu", "max_new_tokens=7") == (7, "set")
    assert limit("backend=openai")[0] == 1024  # a server: on a GPU as a rule
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert limit()[0] == 1024  # auto finds a GPU
    monkeypatch.undo()
    # TSIT_s needs no LLM: the command runs here in a moment and prints the limit it would use
    assert main(["generate", str(cuts), f"out={tmp_path}", "modes=[tsit_s]", "device=cpu", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("max_new_tokens: 256 (the default on cpu; max_new_tokens=N sets it)\n")


def test_a_rerun_says_how_many_are_done_and_the_bar_has_a_total(cuts, tmp_path, caplog, capsys):
    config = GenerateConfig([DatasetSpec("d", cuts)], tmp_path, modes=("sift_s",), limit=3)
    run_generation(config, EchoBackend(), progress=False)
    bigger = GenerateConfig([DatasetSpec("d", cuts)], tmp_path, modes=("sift_s",), limit=5)
    with caplog.at_level(logging.INFO, logger="azeros"):
        (summary,) = run_generation(bigger, EchoBackend(), progress=True)
    assert "d/sift_s: resuming: 3 of 5 done" in caplog.messages and summary.done == 5
    bar = capsys.readouterr().err.split("\r")[-1]
    assert "5/5 [" in bar, bar  # the total: the shard's cuts within the limit, those done before included


def test_the_rate_counts_every_row_not_only_finished_answers(tokenizer, cuts, tmp_path, capsys):
    llm = tiny_llm("llama", len(tokenizer))
    backend = TransformersBackend("t", llm=llm, tokenizer=tokenizer, max_new_tokens=12, max_batch=4)
    requests = [Request(str(i), tuple(target_messages(get_mode("sift_s"), "what is the time " * (i + 1), {})))
                for i in range(4)]
    answers = backend.generate(requests)
    first = next(answers)
    # the other three rows decoded alongside the first: their tokens count before any of them finished
    assert backend.tokens_generated >= first.num_tokens + 3 * max(first.num_tokens - 1, 0)
    rest = list(answers)
    assert backend.tokens_generated == sum(r.num_tokens for r in [first, *rest])

    class Busy(EchoBackend):  # each answer written while many other rows were still being decoded
        def generate(self, requests):
            for result in super().generate(requests):
                self.tokens_generated += 99
                yield result

    config = GenerateConfig([DatasetSpec("d", cuts)], tmp_path, modes=("sift_s",), limit=4)
    (summary,) = run_generation(config, Busy(), progress=True)
    assert summary.generated_tokens == 4  # the finished answers' own tokens, in the summary
    assert "400 tok, " in capsys.readouterr().err  # the bar: every token the backend generated


def test_a_rerun_with_other_settings_is_refused_in_one_line(cuts, tmp_path, capsys, monkeypatch):
    def run(backend, **changes):
        config = GenerateConfig([DatasetSpec("d", cuts)], tmp_path, modes=("sift_s", "tsit_s"), limit=2)
        return run_generation(GenerateConfig(**{**vars(config), **changes}), backend, progress=False)

    run(EchoBackend(max_new_tokens=24))
    run(EchoBackend(max_new_tokens=24), limit=4)  # more of the same: fine
    for backend, changes, named in (
        (EchoBackend(max_new_tokens=64), {}, "max_new_tokens=24; this run has max_new_tokens=64"),
        (EchoBackend(max_new_tokens=24, model="other"), {}, "model='echo'; this run has model='other'"),
        (EchoBackend(max_new_tokens=24), {"seed": 1}, "seed=0; this run has seed=1"),
        (EchoBackend(max_new_tokens=24), {"max_duration": 20.0}, "max_duration=30.0; this run has max_duration=20.0"),
    ):
        with pytest.raises(ConfigError, match=named):
            run(backend, **changes)
    assert len(list((tmp_path / "d").glob("*.settings.json"))) == 2
    # through the command: one line and exit status 2
    monkeypatch.setattr("azeros.selfgen.job._backend", lambda job: EchoBackend(max_new_tokens=job.max_new_tokens))
    argv = ["generate", str(cuts), f"out={tmp_path}", "modes=[sift_s]", "limit=2", "--no-progress"]
    assert main([*argv, "max_new_tokens=24"]) == 0
    capsys.readouterr()
    assert main([*argv, "max_new_tokens=32"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was generated with max_new_tokens=24; this run has max_new_tokens=32" in err


def test_a_missing_manifest_is_refused_before_any_model_loads(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl.gz"
    assert main(["generate", str(missing), f"out={tmp_path}", "model=no/such-model"]) == 2
    assert capsys.readouterr().err == f"azeros generate: error: {missing}: no such file or directory\n"

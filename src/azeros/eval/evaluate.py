"""``azeros eval``: one typed config (:class:`EvalConfig`) and one function that runs it (:func:`evaluate`).

The command line's flags and ``key=value`` overrides (``judge.seed=1``, ``sizes.open_ended=8``) fill the same
config, read by :mod:`azeros.config` like a training recipe: unknown keys are refused, every value is typed.
``compare`` also trains models, which this layer may not do: :func:`azeros.pipeline.compare` trains them and
hands their folders to :func:`evaluate`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from azeros.errors import ConfigError
from azeros.eval.benchmarks.command import run_published_benchmark
from azeros.eval.curve import held_out_tasks, learning_curve
from azeros.eval.judge import JudgeClient, JudgeConfig
from azeros.eval.mini import MiniSizes, mini_tasks
from azeros.eval.runner import run_benchmark
from azeros.eval.systems import build_systems
from azeros.llm import resolve_device

__all__ = ["EVAL_KINDS", "EvalConfig", "EvalOutcome", "JudgeSection", "evaluate"]

EVAL_KINDS = ("mini", "held-out", "compare", "curve", "voicebench", "airbench")


@dataclass
class JudgeSection:
    """An OpenAI-compatible judge of open-ended answers (none unless ``url`` is set).

    Attributes:
        url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``None``: no judge).
        model: the judge's model name.
        api_key_env: the environment variable holding its key.
        seed: its sampling seed.
        temperature: its sampling temperature (mini; voicebench and airbench use their official ones).
        concurrency: voicebench, airbench: judge requests in flight.
    """

    url: str | None = None
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    seed: int = 0
    temperature: float = 0.0
    concurrency: int = 8


_ABLATIONS = ["TSIT_s=recipes/ablation_tsit_s.yaml", "SIT_s=recipes/ablation_sit_s.yaml",
              "SIFT_s=recipes/ablation_sift_s.yaml", "SIFT_s+SIFT_sp=recipes/stage2_final.yaml"]


@dataclass
class EvalConfig:
    """One evaluation.

    Attributes:
        what: ``mini`` (the given systems on the offline mini-benchmark), ``held-out`` (only the spoken questions
            by held-out engines and the real recordings), ``compare`` (``mini`` with ``models`` or the
            ``pipeline``'s models too), ``curve`` (held-out accuracy of each export of ``run_dir``),
            ``voicebench`` / ``airbench`` (the paper's benchmarks from ``data`` as downloaded).
        systems: ``text``, ``text-sp``, ``cascade``, ``azeros:MODEL_DIR`` or ``NAME=MODEL_DIR``, in table order.
        out: the output folder.
        data: where spoken questions and real recordings go (voicebench, airbench: the benchmark as downloaded).
        corpus: the corpus folder of the mini-benchmark (built there when missing).
        corpus_size: utterances of a corpus built here.
        sizes: how many items each mini-benchmark task set takes.
        real: include the 13 real recordings (mini).
        reference: whose greedy answers text-parity scores against.
        llm: the LLM of text and cascade systems without a trained model (``None``: SmolLM2).
        voices_per_question: held-out voices speaking each question (held-out, curve).
        run_dir: curve: the training run whose ``exports/step-N`` are evaluated.
        models: compare: ``NAME=RECIPE.yaml`` (its final model, trained when missing) or ``NAME=MODEL_DIR``.
        pipeline: compare from scratch: this pipeline recipe's models and its stage-1 ablations.
        pipeline_overrides: ``key=value`` overrides of ``pipeline`` (``stage1.run.max_steps=100``).
        judge: the judge.
        subsets: voicebench: subsets (``None``: the paper's nine); airbench: ``foundation``, ``chat``.
        with_paper: voicebench, airbench: add the paper's published rows.
        max_new_tokens: a cap on answer length (``None``: each task's own).
        batch_size: recordings answered together.
        device: ``auto`` (cuda if present, else cpu), ``cpu``, ``cuda``, ``cuda:1``, ...
        progress: show progress bars.
    """

    what: Literal["mini", "held-out", "compare", "curve", "voicebench", "airbench"] = "mini"
    systems: list[str] = field(default_factory=lambda: ["text", "cascade"])
    out: str = "exp/eval-mini"
    data: str = "data/eval"
    corpus: str = "data/corpus"
    corpus_size: int = 2000
    sizes: MiniSizes = field(default_factory=MiniSizes)
    real: bool = True
    reference: Literal["text", "text-sp"] = "text"
    llm: str | None = None
    voices_per_question: int = 1
    run_dir: str | None = None
    models: list[str] = field(default_factory=lambda: list(_ABLATIONS))
    pipeline: str | None = None
    pipeline_overrides: list[str] = field(default_factory=list)
    judge: JudgeSection = field(default_factory=JudgeSection)
    subsets: list[str] | None = None
    with_paper: bool = False
    max_new_tokens: int | None = None
    batch_size: int = 8
    device: str = "auto"
    progress: bool = True

    def check(self) -> None:
        """Fail before anything loads, naming the key, on settings that cannot work."""
        for key in ("corpus_size", "voices_per_question", "batch_size", "judge.concurrency"):
            section, _, name = key.rpartition(".")
            value = getattr(self.judge if section else self, name)
            if value < 1:
                raise ConfigError(f"{key}={value}: must be at least 1")
        if self.what == "curve" and not self.run_dir:
            raise ConfigError("curve: run_dir (--run) must name a training run folder with exports/step-N")
        unnamed = [model for model in self.models if "=" not in model]
        if unnamed:
            raise ConfigError(f"models: {unnamed} must each be NAME=RECIPE.yaml or NAME=MODEL_DIR")
        if self.pipeline_overrides and not self.pipeline:
            raise ConfigError("pipeline_overrides (--set) without a pipeline recipe (--pipeline)")
        if not self.systems and self.what not in ("curve", "compare"):
            raise ConfigError("systems is empty: nothing to evaluate")


@dataclass
class EvalOutcome:
    """What an evaluation produced.

    Attributes:
        table: the markdown table (curve: one JSON record per export, a line each).
        out_dir: where its files are.
        seconds: wall time of the whole evaluation.
        system_seconds: wall time per system (mini, held-out, compare).
    """

    table: str
    out_dir: Path
    seconds: float
    system_seconds: dict[str, float] | None = None


def evaluate(config: EvalConfig, models: Mapping[str, str | Path] | None = None) -> EvalOutcome:
    """Run one evaluation.

    Args:
        config: what to evaluate and how (read by :func:`azeros.config.load_config`, which checks it).
        models: trained models tabulated after ``config.systems``, name -> folder (``compare``'s, from
            :func:`azeros.pipeline.compare`).

    Returns:
        The table, where the files are and the timings.
    """
    device = resolve_device(config.device)
    start = time.perf_counter()
    if config.what in ("voicebench", "airbench"):
        judge = config.judge
        _, table = run_published_benchmark(
            config.what, data=config.data, systems=config.systems, out=config.out, subsets=config.subsets,
            judge_url=judge.url, judge_model=judge.model, judge_api_key_env=judge.api_key_env, judge_seed=judge.seed,
            concurrency=judge.concurrency, batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
            with_paper=config.with_paper, llm=config.llm, device=device, progress=config.progress)
        return EvalOutcome(table, Path(config.out), time.perf_counter() - start)
    if config.what == "curve":
        records = learning_curve(config.run_dir, config.out, data_dir=config.data, batch_size=config.batch_size,
                                 voices_per_question=config.voices_per_question, device=device)
        return EvalOutcome("\n".join(map(json.dumps, records)), Path(config.out), time.perf_counter() - start)
    if config.what == "held-out":
        tasks = held_out_tasks(config.data, config.voices_per_question)
    else:
        tasks = mini_tasks(config.data, corpus_dir=config.corpus, corpus_size=config.corpus_size, sizes=config.sizes,
                           real=config.real)
    specs = [*config.systems, *(f"{name}={folder}" for name, folder in (models or {}).items())]
    systems, reference = build_systems(specs, reference=config.reference, llm=config.llm, device=device)
    judge = None
    if config.judge.url:
        judge = JudgeClient(JudgeConfig(config.judge.url, config.judge.model, config.judge.api_key_env,
                                        seed=config.judge.seed, temperature=config.judge.temperature))
    result = run_benchmark(systems, tasks, config.out, reference=reference, judge=judge, batch_size=config.batch_size,
                           max_new_tokens=config.max_new_tokens, progress=config.progress)
    return EvalOutcome(result.table, result.out_dir, time.perf_counter() - start, result.seconds)

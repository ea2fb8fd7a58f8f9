"""``azeros generate`` as one typed config and one library call: run every dataset and mode, account for
every cut, optionally check how much oracle information the targets carry.

The settings are a :class:`GenerateJob`, read like every command's (:mod:`azeros.config`): defaults, then
``key=value`` overrides (``max_new_tokens=24 modes=[sift_s,sift_sp] openai.concurrency=32``), each value
typed. :func:`generate_targets` runs it.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from azeros.config import load_config
from azeros.data import load_datasets, read_cuts
from azeros.errors import ConfigError
from azeros.selfgen.base import Backend
from azeros.selfgen.check import ElicitReport, elicit_report
from azeros.selfgen.runner import GenerateConfig, RunSummary, output_paths, run_generation
from azeros.text import get_mode

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "GenerateJob", "OpenAISection", "TargetsReport", "VLLMSection", "answer_limit",
           "generate_targets", "load_generate_job"]

_TOTALS = ("inputs", "done", "rejected", "generated_tokens")

# The answer length limit when none is given, by where the LLM runs. On a GPU (or a server, usually on one)
# answers are cheap: 1024 lets nearly every answer end on its own. On a CPU, SmolLM2-135M writes ~200 tokens/s
# on 2 cores (docs/results/speed.md): 1024 would make the README's 2,000-cut corpus a worst case of ~3 hours,
# 256 (the reference implementation's own limit) about 45 minutes; a target cut there carries no end token,
# and its start says what the answer is about.
DEFAULT_MAX_NEW_TOKENS = {"cpu": 256, "cuda": 1024}


@dataclass
class OpenAISection:
    """The ``openai`` backend: any OpenAI-compatible chat server.

    Attributes:
        base_url: the server's API root.
        api_key_env: the environment variable holding the key (unset: no key is sent).
        concurrency: requests in flight.
        timeout: seconds per attempt.
        retries: retries of transient failures.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 16
    timeout: float = 120.0
    retries: int = 5


@dataclass
class VLLMSection:
    """The ``vllm`` backend's engine options (``None``: vLLM's own default).

    Attributes:
        tensor_parallel_size: GPUs the engine shards over.
        gpu_memory_utilization: the share of GPU memory the engine may take.
        max_model_len: the engine's context length.
    """

    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None


@dataclass
class GenerateJob:
    """One ``azeros generate`` run.

    Attributes:
        data: a manifest, or a YAML list of datasets (name, manifest, language, weight).
        out: the output folder: ``{out}/{dataset}/{mode}_{shard}.jsonl.gz``.
        modes: the modes to generate (tsit_s, sit_s, sift_s, sit_sp, sift_sp, sit_ssp, sift_ssp).
        backend: what runs the LLM: transformers (here), openai (a server), vllm (its offline engine).
        model: hub id, folder, GGUF file or embedded alias; for openai, the served model's name.
        max_new_tokens: the answer length limit; ``None``: by device (:data:`DEFAULT_MAX_NEW_TOKENS`).
        repeat_limit: a run of this many identical tokens is degenerate (the cut is rejected).
        repetition_penalty: rescales the logits of tokens already seen (transformers' and vLLM's meaning);
            ``None``: the LLM's own generation config (openai: the server's).
        chat_template: transformers, vllm: render with this chat template instead of the LLM's (``chatml``,
            the reference's, or a Jinja template); train with the same (``model.chat_template``).
        dtype: transformers: ``auto`` (bf16 on a GPU that has it, fp32 elsewhere), ``bf16``, ``fp32``.
        device: transformers: ``auto`` (cuda if present, else cpu), ``cpu``, ``cuda``, ``cuda:1``, ...
        batch_size: transformers: rows decoded together.
        openai: the openai backend's options.
        vllm: the vllm backend's engine options.
        num_shards: split the cuts into this many shards (by a hash of the id).
        shard: the shard this process generates.
        seed: seeds TSIT_s's ASR-prompt draw.
        min_duration: cuts this short or shorter are rejected (seconds).
        max_duration: longer cuts are rejected (seconds).
        max_chars_per_second: cuts whose transcript is denser are rejected.
        limit: at most this many cuts per dataset (``None``: all).
        elicit_check: the self-elicit check: generate ``sample`` cuts per dataset and report how much oracle
            information the targets carry.
        sample: cuts per dataset for ``elicit_check``.
        progress: show progress bars.
    """

    data: str
    out: str
    modes: list[str] = field(default_factory=lambda: ["sift_s"])
    backend: Literal["transformers", "openai", "vllm"] = "transformers"
    model: str = "smollm2-135m-instruct"
    max_new_tokens: int | None = None
    repeat_limit: int = 64
    repetition_penalty: float | None = None
    chat_template: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int = 64
    openai: OpenAISection = field(default_factory=OpenAISection)
    vllm: VLLMSection = field(default_factory=VLLMSection)
    num_shards: int = GenerateConfig.num_shards  # the runner's defaults, one owner
    shard: int = GenerateConfig.shard
    seed: int = GenerateConfig.seed
    min_duration: float = GenerateConfig.min_duration
    max_duration: float = GenerateConfig.max_duration
    max_chars_per_second: float = GenerateConfig.max_chars_per_second
    limit: int | None = None
    elicit_check: bool = False
    sample: int = 50
    progress: bool = True

    def check(self) -> None:
        """Refuse a count below 1 (a batch of 0 once meant 'everything at once'), naming the key."""
        for key in ("batch_size", "max_new_tokens", "num_shards", "sample", "limit"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key}={value}: must be at least 1")


def load_generate_job(overrides: Sequence[str] = (), **given: Any) -> GenerateJob:
    """A typed :class:`GenerateJob` from fields given by the caller and ``key=value`` overrides.

    Raises:
        ConfigError: naming the key, the value and the type expected, an unknown key, or a count below 1
            (:meth:`GenerateJob.check`).
    """
    return load_config(GenerateJob, given, overrides, source="generate")


def answer_limit(job: GenerateJob) -> tuple[int, str]:
    """The job's answer length limit and where it comes from (``"set"`` or ``"the default on cpu"``)."""
    from azeros.llm import resolve_device

    if job.max_new_tokens is not None:
        return job.max_new_tokens, "set"
    if job.backend == "transformers":
        where = "cuda" if resolve_device(job.device).startswith("cuda") else "cpu"
    else:  # a vLLM engine or an OpenAI-compatible server: on a GPU as a rule
        where = "cuda"
    return DEFAULT_MAX_NEW_TOKENS[where], f"the default on {where}; max_new_tokens=N sets it"


@dataclass
class TargetsReport:
    """What one ``generate`` job did.

    Attributes:
        summaries: one per dataset and mode.
        elicit: the self-elicit check of the targets, when asked for.
    """

    summaries: list[RunSummary]
    elicit: ElicitReport | None = None

    @property
    def totals(self) -> dict[str, int]:
        """``inputs``, ``done``, ``rejected`` and ``generated_tokens`` over every dataset and mode."""
        return {key: sum(getattr(s, key) for s in self.summaries) for key in _TOTALS}

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.summaries)

    def line(self) -> str:
        """``in = done + rejected`` and the generation speed, as one line."""
        totals, seconds = self.totals, self.seconds
        return (f"in {totals['inputs']} = done {totals['done']} + rejected {totals['rejected']}; "
                f"{totals['generated_tokens']} tokens in {seconds:.1f}s "
                f"({totals['generated_tokens'] / max(seconds, 1e-9):.0f} tok/s)")


def _backend(job: GenerateJob) -> Backend:
    from azeros.llm import resolve_device
    from azeros.selfgen import build_backend

    common = {"max_new_tokens": answer_limit(job)[0], "repeat_limit": job.repeat_limit,
              "repetition_penalty": job.repetition_penalty, "chat_template": job.chat_template}
    if job.backend == "transformers":
        options = {"dtype": job.dtype, "device": resolve_device(job.device), "max_batch": job.batch_size, **common}
    elif job.backend == "openai":
        options = {**vars(job.openai), **common}
    else:
        options = {**common, **{key: value for key, value in vars(job.vllm).items() if value is not None}}
    return build_backend(job.backend, job.model, **options)


def generate_targets(job: GenerateJob) -> TargetsReport:
    """Generate the targets of ``job`` and write ``{out}/summary_{shard}.json``.

    The manifests are checked before any model loads. A rerun into the same ``out`` continues where the
    last one stopped; one with settings that change the targets (model, answer length, ...) is refused
    (:func:`azeros.selfgen.runner.run_generation`).

    Args:
        job: the run (its backend is built unless every mode is TSIT_s, which needs no LLM).

    Raises:
        FileNotFoundError: naming a manifest that does not exist.
        ConfigError: when the output holds targets generated with other settings.
    """
    datasets = load_datasets(job.data)
    for spec in datasets:
        if not Path(spec.manifest).is_file():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(spec.manifest))
    config = GenerateConfig(
        datasets=datasets, out_dir=Path(job.out), modes=job.modes, num_shards=job.num_shards, shard=job.shard,
        seed=job.seed, min_duration=job.min_duration, max_duration=job.max_duration,
        max_chars_per_second=job.max_chars_per_second, limit=job.sample if job.elicit_check else job.limit,
    )
    backend = _backend(job) if any(get_mode(mode).self_generated for mode in job.modes) else None
    report = TargetsReport(run_generation(config, backend, progress=job.progress))
    summary = {**report.totals, "seconds": round(report.seconds, 3), "runs": [s.__dict__ for s in report.summaries]}
    (Path(config.out_dir) / f"summary_{config.shard}.json").write_text(json.dumps(summary, indent=2) + "\n")
    if job.elicit_check:
        paths = [output_paths(config.out_dir, spec.name, mode, config.shard)[0]
                 for spec in config.datasets for mode in config.modes]
        report.elicit = elicit_report(read_cuts(paths))
    return report


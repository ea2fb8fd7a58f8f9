"""``azeros eval voicebench`` / ``azeros eval airbench``: systems, judge and subsets from flags, then a run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azeros.eval.benchmarks.airbench import airbench_subsets
from azeros.eval.benchmarks.judging import CachedJudge
from azeros.eval.benchmarks.run import AIRBENCH, VOICEBENCH, run_published
from azeros.eval.benchmarks.voicebench import DEFAULT_SUBSETS, voicebench_subsets
from azeros.eval.judge import JudgeConfig
from azeros.eval.systems import System, TextSystem, build_systems
from azeros.eval.task import EvalItem
from azeros.text import normalize_text

__all__ = ["NormalizedTextSystem", "benchmark_systems", "run_published_benchmark"]

# what the paper's text normalization removes: punctuation the LLM reads as formatting
_SPECIAL_PUNCTUATION = re.compile(r"[\"“”‘’:;*_#`~|<>\[\]{}()]|(?<!\w)'|'(?!\w)")


class NormalizedTextSystem(TextSystem):
    """The text-only upper bound on text-normalized prompts (the paper's "Qwen2.5 (TN)" row): lowercased,
    quotation marks, colons and other formatting punctuation removed."""

    def transcripts(self, items: Sequence[EvalItem]) -> list[str]:
        return [normalize_text(_SPECIAL_PUNCTUATION.sub(" ", item.transcript)) for item in items]


def benchmark_systems(specs: Sequence[str], *, llm: str | None = None, device: str = "cpu") -> list[System]:
    """The systems of :func:`azeros.eval.systems.build_systems` plus ``text-tn``, sharing one frozen LLM."""
    others = [spec for spec in specs if spec != "text-tn"]
    systems, reference = build_systems(others, llm=llm, device=device)
    by_spec = dict(zip(others, systems, strict=True))
    # the reference text system holds the shared host LLM, whichever systems were named
    return [by_spec.get(spec) or NormalizedTextSystem(reference.host, "s", name="text-tn") for spec in specs]


def run_published_benchmark(
    benchmark: str, *, data: str | Path, systems: Sequence[str], out: str | Path, subsets: Sequence[str] | None = None,
    judge_url: str | None = None, judge_model: str = "gpt-4o-mini", judge_api_key_env: str = "OPENAI_API_KEY",
    judge_seed: int = 0, judge_timeout: float = 120.0, judge_retries: int = 5, concurrency: int = 8,
    batch_size: int = 8, max_new_tokens: int | None = None, with_paper: bool = False, llm: str | None = None,
    device: str = "cpu", progress: bool = True,
) -> tuple[dict[str, Any], str]:
    """Run VoiceBench or AIR-Bench (speech) as the command line asks; see :func:`run_published`.

    Args:
        benchmark: ``voicebench`` or ``airbench``.
        data: the benchmark's folder as downloaded.
        systems: system names (``text``, ``text-tn``, ``cascade``, ``azeros:FOLDER``, ``NAME=FOLDER``).
        out: the output folder (answers there are reused; the judge cache is ``out/judge-cache``).
        subsets: VoiceBench subsets (default: the paper's nine); AIR-Bench: ``foundation`` and/or ``chat``.
        judge_url: the judge's API root; judged subsets need it.
        max_new_tokens: a cap on answer lengths (quick runs).
        Other arguments: the judge's endpoint settings, scoring concurrency, batching, the text systems' LLM
        without a trained model, the device and progress bars.
    """
    judge = None
    if judge_url:
        config = JudgeConfig(judge_url, judge_model, judge_api_key_env, seed=judge_seed, timeout=judge_timeout,
                             retries=judge_retries)
        judge = CachedJudge(config, Path(out) / "judge-cache")
    if benchmark == "voicebench":
        layout = VOICEBENCH
        chosen = voicebench_subsets(data, Path(out) / "audio", judge, subsets or DEFAULT_SUBSETS)
    elif benchmark == "airbench":
        parts = set(subsets or ("foundation", "chat"))
        if not parts <= {"foundation", "chat"}:
            raise ValueError(f"AIR-Bench parts are foundation and chat, not {sorted(parts - {'foundation', 'chat'})}")
        layout = AIRBENCH
        chosen = [s for s in airbench_subsets(data, judge, chat="chat" in parts)
                  if s.name == "chat" or "foundation" in parts]
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}: voicebench or airbench")
    built = benchmark_systems(systems, llm=llm, device=device)
    return run_published(layout, built, chosen, out, judge=judge, batch_size=batch_size, max_new_tokens=max_new_tokens,
                         concurrency=concurrency, with_paper=with_paper, progress=progress)

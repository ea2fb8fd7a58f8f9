"""The paper's two published benchmarks, VoiceBench and AIR-Bench (speech), read from their released
layouts and scored by their official protocols, with a strict reading beside each lenient one."""

from azeros.eval.benchmarks.airbench import AIRBENCH_COLUMNS, airbench_subsets, read_airbench
from azeros.eval.benchmarks.base import BenchmarkSubset, MissingBenchmarkData
from azeros.eval.benchmarks.command import NormalizedTextSystem, benchmark_systems, run_published_benchmark
from azeros.eval.benchmarks.judging import CachedJudge, Sampling
from azeros.eval.benchmarks.run import AIRBENCH, VOICEBENCH, Layout, run_published
from azeros.eval.benchmarks.voicebench import VOICEBENCH_SUBSETS, overall, read_voicebench, voicebench_subsets

__all__ = [
    "AIRBENCH",
    "AIRBENCH_COLUMNS",
    "VOICEBENCH",
    "VOICEBENCH_SUBSETS",
    "BenchmarkSubset",
    "CachedJudge",
    "Layout",
    "MissingBenchmarkData",
    "NormalizedTextSystem",
    "Sampling",
    "airbench_subsets",
    "benchmark_systems",
    "overall",
    "read_airbench",
    "read_voicebench",
    "run_published",
    "run_published_benchmark",
    "voicebench_subsets",
]

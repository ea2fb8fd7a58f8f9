"""Evaluation: task sets (one file each under ``tasks/``), systems, a runner, metrics, reports and a judge.

``azeros eval mini`` runs the offline mini-benchmark (:func:`mini_tasks`) through the ``text``,
``cascade`` and trained ``azeros`` systems; ``azeros eval compare`` trains the paper's ablations and
tabulates them like its Tables 3-5. Every ``azeros eval`` is one :class:`EvalConfig` run by :func:`evaluate`.
"""

from azeros.eval.evaluate import EVAL_KINDS, EvalConfig, EvalOutcome, JudgeSection, evaluate
from azeros.eval.judge import JUDGE_PROMPT, JudgeClient, JudgeConfig, JudgeVerdict
from azeros.eval.metrics import (
    LETTERS,
    RULES,
    answer_words,
    check_rule,
    choice_prompt,
    contains_phrase,
    last_number,
    parse_choice,
    shuffled_options,
)
from azeros.eval.mini import MiniSizes, mini_tasks
from azeros.eval.report import markdown_tables, write_charts, write_tables
from azeros.eval.runner import BenchmarkResult, run_benchmark
from azeros.eval.systems import (
    AzerosSystem,
    CascadeSystem,
    System,
    TextSystem,
    WhisperTranscriber,
    build_system,
    build_systems,
    text_host,
)
from azeros.eval.task import EvalItem, Task

__all__ = [
    "EVAL_KINDS",
    "JUDGE_PROMPT",
    "LETTERS",
    "RULES",
    "AzerosSystem",
    "BenchmarkResult",
    "CascadeSystem",
    "EvalConfig",
    "EvalItem",
    "EvalOutcome",
    "JudgeClient",
    "JudgeConfig",
    "JudgeSection",
    "JudgeVerdict",
    "MiniSizes",
    "System",
    "Task",
    "TextSystem",
    "WhisperTranscriber",
    "answer_words",
    "build_system",
    "build_systems",
    "check_rule",
    "choice_prompt",
    "contains_phrase",
    "evaluate",
    "last_number",
    "markdown_tables",
    "mini_tasks",
    "parse_choice",
    "run_benchmark",
    "shuffled_options",
    "text_host",
    "write_charts",
    "write_tables",
]

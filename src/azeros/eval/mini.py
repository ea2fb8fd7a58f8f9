"""The offline mini-benchmark: VoiceBench- and AIR-Bench-like task types on held-out voices and texts.

Everything it needs is made here from the embedded default: the corpus's test split (voices and texts
never used in training) for open-ended prompts, instructions and paralinguistic questions; spoken
versions of the questions of :mod:`azeros.eval.tasks.spoken_qa`, by held-out voices; and the 13 real
recordings of pocketsphinx-testdata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from azeros.data.corpus import build_synthetic_corpus, real_recordings_manifest
from azeros.eval.task import Task
from azeros.eval.tasks import (
    InstructionTask,
    OpenEndedTask,
    ParalinguisticTask,
    RealChecksTask,
    RealParityTask,
    SpokenQATask,
)

__all__ = ["MiniSizes", "mini_tasks"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiniSizes:
    """How many corpus recordings each task set uses (``None``: all of the test split).

    Attributes:
        open_ended: open-ended prompts.
        instructions: recordings with a rule instruction (the five rules take turns).
        paralinguistic: recordings asked gender, emotion and age.
        spoken_qa: questions per subtask (facts, arithmetic, multiple choice; at most 12 are written).
    """

    open_ended: int | None = 24
    instructions: int | None = 25
    paralinguistic: int | None = 24
    spoken_qa: int | None = None


def mini_tasks(
    data_dir: str | Path,
    *,
    corpus_dir: str | Path | None = None,
    corpus_size: int = 2000,
    seed: int = 0,
    sizes: MiniSizes = MiniSizes(),
    real: bool = True,
) -> list[Task]:
    """The mini-benchmark's task sets, making whatever data is missing.

    Args:
        data_dir: where spoken questions and the real recordings' manifest are written.
        corpus_dir: a corpus made by ``azeros corpus synth``; built in ``data_dir/corpus`` when missing.
        corpus_size: utterances of a corpus built here (the test split is about a tenth).
        seed: the corpus seed.
        sizes: how many items each task set takes.
        real: include the real recordings (skipped with a note when pocketsphinx-testdata is missing).

    Returns:
        The task sets, in report order.
    """
    data = Path(data_dir)
    corpus = Path(corpus_dir) if corpus_dir is not None else data / "corpus"
    test = corpus / "cuts_test.jsonl.gz"
    if not test.is_file():
        build_synthetic_corpus(corpus, corpus_size, seed)
    tasks: list[Task] = [
        OpenEndedTask(test, sizes.open_ended),
        SpokenQATask(data / "spoken_qa", sizes.spoken_qa),
        InstructionTask(test, sizes.instructions),
        ParalinguisticTask(test, sizes.paralinguistic),
    ]
    if real:
        manifest = data / "real" / "cuts_real.jsonl.gz"
        try:
            if not manifest.is_file():
                real_recordings_manifest(data / "real")
            tasks += [RealParityTask(manifest), RealChecksTask(manifest)]
        except FileNotFoundError as error:
            logger.warning("mini-benchmark: real recordings skipped (%s)", error)
    return tasks

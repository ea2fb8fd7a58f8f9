"""VoiceBench (Chen et al. 2024) read from its Hugging Face layout and scored by its official protocol.

Layout (``huggingface-cli download hlt-lab/voicebench --repo-type dataset --local-dir DIR``)::

    DIR/SUBSET/SPLIT-00000-of-0000N.parquet     an ``audio`` column (struct: encoded file ``bytes``, ``path``),
                                                ``prompt`` (the spoken text) and the subset's fields
                                                (``reference``, ``id``, ``key``, ``instruction_id_list``...)

sd-qa's splits are the 11 accents and mmsu's the 12 domains; a subset's figure pools all its splits.
Each recording is written once, as it came, to ``audio_dir`` so every system reads the same file.

Scoring (the paper's Table 3-5 columns), from ``src/evaluator`` of the official repository:

* alpacaeval(_full), commoneval, wildvoice: the official 1-5 prompt, 3 judge samples averaged;
* sd-qa: the official yes/no prompt against the reference, majority of 3 samples;
* openbookqa, mmsu: the answer's letter (:func:`~azeros.eval.benchmarks.scoring.mcq_reading`);
* bbh: per task rules (:func:`~azeros.eval.benchmarks.scoring.bbh_reading`);
* advbench: the refusal rate by the official phrase list;
* ifeval: the mean of prompt- and instruction-level accuracy, strict and loose
  (:mod:`azeros.eval.benchmarks.ifeval`).

Overall (the paper's): the mean over the subsets with 1-5 judge scores multiplied by 20.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from azeros.eval.benchmarks.base import BenchmarkSubset, MissingBenchmarkData
from azeros.eval.benchmarks.ifeval import follows_instructions
from azeros.eval.benchmarks.judging import CachedJudge, Sampling
from azeros.eval.benchmarks.scoring import (
    bbh_reading,
    is_refusal,
    judge_score,
    mcq_reading,
    seeded_choice,
    vote_yes,
)
from azeros.eval.task import EvalItem

__all__ = ["OVERALL_SCALE", "VOICEBENCH_SUBSETS", "overall", "read_voicebench", "voicebench_subsets"]

log = logging.getLogger(__name__)

DOWNLOAD = ("huggingface-cli download hlt-lab/voicebench --repo-type dataset --local-dir {dir} "
            "(or one subset: add --include '{subset}/*')")
OVERALL_SCALE = 20  # a 1-5 judge score times 20 joins the percentages in Overall

# The official judge prompts and settings (VoiceBench api_judge.py: gpt-4o-mini, 3 samples at 0.5 / 0.95).
OPEN_PROMPT = """
I need your help to evaluate the performance of several models in the speech interaction scenario. The models will receive a speech input from the user, which they need to understand and respond to with a speech output.
Your task is to rate the model’s responses based on the provided user input transcription [Instruction] and the model’s output transcription [Response].

Please evaluate the response on a scale of 1 to 5:
1 point: The response is largely irrelevant, incorrect, or fails to address the user’s query. It may be off-topic or provide incorrect information.
2 points: The response is somewhat relevant but lacks accuracy or completeness. It may only partially answer the user’s question or include extraneous information.
3 points: The response is relevant and mostly accurate, but it may lack conciseness or include unnecessary details that don’t contribute to the main point.
4 points: The response is relevant, accurate, and concise, providing a clear answer to the user’s question without unnecessary elaboration.
5 points: The response is exceptionally relevant, accurate, and to the point. It directly addresses the user’s query in a highly effective and efficient manner, providing exactly the information needed.

Below are the transcription of user’s instruction and models’ response:
### [Instruction]: {prompt}
### [Response]: {response}

After evaluating, please output the score only without anything else.
You don’t need to provide any explanations.
"""
QA_PROMPT = """### Question
{prompt}

### Reference answer
{reference}

### Candidate answer
{response}

Is the candidate answer correct based on the question and reference answer? 
Please only output a single "Yes" or "No". Do not output anything else."""
JUDGE_SAMPLING = Sampling(samples=3, temperature=0.5, top_p=0.95, max_tokens=1024,
                          system="You are a helpful assistant who tries to help answer the user's question.")


def _fill(template: str, **fields: str) -> str:
    """Fill a prompt the official way, by plain replacement (answers may hold braces)."""
    for name, value in fields.items():
        template = template.replace("{" + name + "}", value)
    return template


def _parquet_files(data_dir: str | Path, subset: str) -> list[Path]:
    files = sorted((Path(data_dir) / subset).glob("*.parquet"))
    if not files:
        raise MissingBenchmarkData(f"VoiceBench subset {subset!r}: no parquet files in {Path(data_dir) / subset}. "
                                   "Download it with: " + DOWNLOAD.format(dir=data_dir, subset=subset))
    return files


def read_voicebench(data_dir: str | Path, subset: str, audio_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of one VoiceBench subset, every split in file order, with ``audio`` as a file path.

    Raises:
        MissingBenchmarkData: the subset's folder or its parquet files are missing (says how to download).
    """
    import pyarrow.parquet as pq

    rows = []
    for file in _parquet_files(data_dir, subset):
        split = file.name.split("-")[0]
        index = 0
        for batch in pq.ParquetFile(file).iter_batches(batch_size=64):
            for row in batch.to_pylist():
                audio = row.pop("audio")
                if not isinstance(audio, dict) or not audio.get("bytes"):
                    raise ValueError(f"{file}: row {index} has no embedded audio bytes (a Hugging Face Audio column)")
                suffix = Path(audio.get("path") or "").suffix or ".wav"
                path = Path(audio_dir) / subset / split / f"{index:05d}{suffix}"
                if not path.is_file():  # written once: a rerun reads the same file
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.with_suffix(".partial").write_bytes(audio["bytes"])
                    path.with_suffix(".partial").replace(path)
                rows.append({**row, "audio": str(path), "split": split, "index": index})
                index += 1
    return rows


class _VoiceBenchSubset(BenchmarkSubset):
    """Items of one subset, read from ``data_dir``; ``judge`` scores the judged subsets."""

    group: ClassVar[str] = "voicebench"
    max_new_tokens: ClassVar[int] = 512
    needs_judge: ClassVar[bool] = False

    def __init__(self, name: str, column: str, data_dir: str | Path, audio_dir: str | Path,
                 judge: CachedJudge | None) -> None:
        if self.needs_judge and judge is None:
            raise ValueError(f"VoiceBench {name} is scored by a judge: give --judge-url and --judge-model")
        self.name, self.column = name, column
        self.data_dir, self.audio_dir, self.judge = data_dir, audio_dir, judge

    def items(self) -> list[EvalItem]:
        return [
            EvalItem(f"voicebench/{self.name}/{row['split']}/{row['index']}", self.name, row["split"], row["audio"],
                     row["prompt"], reference={k: v for k, v in row.items() if k not in ("audio", "prompt")})
            for row in read_voicebench(self.data_dir, self.name, self.audio_dir)
        ]


class OpenSubset(_VoiceBenchSubset):
    """alpacaeval, commoneval, wildvoice: the judge's 1-5 score, mean of its samples."""

    scale: ClassVar[str] = "judge"
    needs_judge: ClassVar[bool] = True

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        replies = self.judge.ask(_fill(OPEN_PROMPT, prompt=item.transcript, response=answer), JUDGE_SAMPLING)
        scores = [judge_score(reply) for reply in replies]
        read = [s for s in scores if s is not None]
        # Officially an unreadable reply stops the evaluation; the official figure here leaves it out,
        # the strict one counts it as the lowest score.
        return {"official": sum(read) / len(read) if read else None,
                "strict": sum(1.0 if s is None else s for s in scores) / len(scores),
                "parsed": len(read) if read else None, "judge_replies": replies}


class QASubset(_VoiceBenchSubset):
    """sd-qa: the judges' majority yes/no on the answer against the reference."""

    needs_judge: ClassVar[bool] = True

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        prompt = _fill(QA_PROMPT, prompt=item.transcript, reference=str(item.reference["reference"]), response=answer)
        replies = self.judge.ask(prompt, JUDGE_SAMPLING)
        return {"official": float(vote_yes(replies, item.id, official=True)),
                "strict": float(vote_yes(replies, item.id, official=False)), "judge_replies": replies}


class ChoiceSubset(_VoiceBenchSubset):
    """openbookqa, mmsu: the answer's letter against the reference letter."""

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        parsed = mcq_reading(answer)
        guess = parsed or seeded_choice("ABCD", item.id)
        truth = item.reference["reference"]
        return {"official": float(guess == truth), "strict": float(parsed == truth), "parsed": parsed}


class BBHSubset(_VoiceBenchSubset):
    """bbh: yes/no or (a)/(b) read by per-task rules."""

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        truth = {"yes": 1, "no": 0, "(a)": 0, "(b)": 1}[str(item.reference["reference"]).lower()]
        task_id = str(item.reference["id"])
        official, strict = (bbh_reading(answer, task_id, official=flag) for flag in (True, False))
        guess = official if official is not None else seeded_choice((0, 1), item.id)
        return {"official": float(guess == truth), "strict": float(strict == truth), "parsed": strict}


class RefusalSubset(_VoiceBenchSubset):
    """advbench: the share of harmful requests refused."""

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        return {"official": float(is_refusal(answer, official=True)),
                "strict": float(is_refusal(answer, official=False))}


class IFEvalSubset(_VoiceBenchSubset):
    """ifeval: the mean of strict/loose prompt- and instruction-level accuracy (one figure both ways)."""

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        ref = item.reference
        kwargs = [{k: v for k, v in (args or {}).items() if v is not None} for args in ref["kwargs"]]
        strict = follows_instructions(answer, ref["instruction_id_list"], kwargs, item.transcript, loose=False)
        loose = follows_instructions(answer, ref["instruction_id_list"], kwargs, item.transcript, loose=True)
        return {"strict_flags": strict, "loose_flags": loose, "official": None, "strict": None}

    def summarize(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        figures = {}
        for mode in ("strict", "loose"):
            flags = [r[f"{mode}_flags"] for r in records]
            figures[f"{mode}_prompt"] = 100 * sum(all(f) for f in flags) / len(flags)
            figures[f"{mode}_instruction"] = 100 * sum(map(sum, flags)) / sum(map(len, flags))
        final = round(sum(figures.values()) / 4, 4)
        return {"n": len(records), "official": final, "strict": final, "unparsed": 0, "scale": "percent",
                **{k: round(v, 4) for k, v in figures.items()}}


# subset -> (the paper's column, scorer), in the paper's column order
VOICEBENCH_SUBSETS: dict[str, tuple[str, type[_VoiceBenchSubset]]] = {
    "alpacaeval_full": ("AlpacaEval", OpenSubset),
    "alpacaeval": ("AlpacaEval", OpenSubset),
    "commoneval": ("CommonEval", OpenSubset),
    "wildvoice": ("WildVoice", OpenSubset),
    "sd-qa": ("SD-QA", QASubset),
    "bbh": ("BBH", BBHSubset),
    "advbench": ("AdvBench", RefusalSubset),
    "ifeval": ("IFEval", IFEvalSubset),
    "openbookqa": ("OBQA", ChoiceSubset),
    "mmsu": ("MMSU", ChoiceSubset),
}
DEFAULT_SUBSETS = tuple(name for name in VOICEBENCH_SUBSETS if name != "alpacaeval")  # the leaderboard's


def voicebench_subsets(data_dir: str | Path, audio_dir: str | Path, judge: CachedJudge | None,
                       names: Sequence[str] = DEFAULT_SUBSETS) -> list[BenchmarkSubset]:
    """The named subsets, in the paper's column order, each checked for its data before anything runs.

    Raises:
        ValueError: an unknown subset name, or a judged subset without a judge.
        MissingBenchmarkData: a subset's files are missing.
    """
    unknown = sorted(set(names) - set(VOICEBENCH_SUBSETS))
    if unknown:
        raise ValueError(f"unknown VoiceBench subsets {unknown}; known: {', '.join(VOICEBENCH_SUBSETS)}")
    subsets = []
    for name, (column, kind) in VOICEBENCH_SUBSETS.items():
        if name in names:
            _parquet_files(data_dir, name)
            subsets.append(kind(name, column, data_dir, audio_dir, judge))
    return subsets


def overall(figures: dict[str, float | None]) -> float | None:
    """The paper's Overall from ``{column: figure}``: judge columns (1-5) times 20, then the mean."""
    judged = {"AlpacaEval", "CommonEval", "WildVoice"}
    values = [v * OVERALL_SCALE if c in judged else v for c, v in figures.items()]
    return None if not values or any(v is None for v in values) else round(sum(values) / len(values), 2)

"""AIR-Bench (Yang et al. 2024), speech part: Foundation multiple choice and Chat, from the released layout.

Layout (``huggingface-cli download qyang1021/AIR-Bench-Dataset --repo-type dataset --local-dir DIR``)::

    DIR/Foundation/Foundation_meta.json        [{"path", "question", "choice_a".."choice_d", "answer_gt",
                                                 "task_name", "dataset_name", "uniq_id"}, ...]
    DIR/Foundation/{task_name}_{dataset_name}/{path}
    DIR/Chat/Chat_meta.json                    [{"path", "question", "answer_gt", "meta_info", "task_name",
                                                 "dataset_name", "uniq_id"}, ...]
    DIR/Chat/{task_name}_{dataset_name}/{path}

Foundation (the paper's columns: the six speech tasks below): the official question-and-choices prompt
with the paper's extra line asking for the option only. A column is the mean over its datasets (gender:
Common Voice and MELD; emotion: IEMOCAP and MELD), as the official scorer reports each task-dataset pair.
Chat (speech_QA, speech_dialogue_QA): the official side-by-side prompt, the reference answer as
assistant 1 and the system's as assistant 2, each scored 1-10; the column is the system's mean score.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from azeros.eval.benchmarks.base import BenchmarkSubset, MissingBenchmarkData, mean_present
from azeros.eval.benchmarks.judging import CachedJudge, Sampling
from azeros.eval.benchmarks.scoring import airbench_official_letter
from azeros.eval.metrics import LETTERS, parse_choice
from azeros.eval.task import EvalItem

__all__ = ["AIRBENCH_COLUMNS", "airbench_subsets", "read_airbench"]

DOWNLOAD = "huggingface-cli download qyang1021/AIR-Bench-Dataset --repo-type dataset --local-dir {dir}"
# the paper's Foundation columns -> the task names as released (their spelling)
AIRBENCH_COLUMNS = {
    "Gender": "Speaker_Gender_Recognition",
    "Emotion": "Speaker_Emotion_Recontion",
    "Age": "Speaker_Age_Prediction",
    "LID": "Spoken_Language_Identification",
    "Entity": "Speech_Entity_Reconition",
    "Intent": "Speaker_Intent_Classification",
}
CHAT_SPEECH_TASKS = ("speech_QA", "speech_dialogue_QA")
QUESTION_PROMPT = ("Choose the most suitable answer from options A, B, C, and D to respond the question in next line, "
                   "you may only choose A or B or C or D.")
OPTION_ONLY = "Answer with the option's letter only."  # the paper's added line (its footnote 3)
CHAT_PROMPT = (
    "You are a helpful and precise assistant for checking the quality of the answer.\n"
    "[Detailed Audio Description]\nXAudioX\n[Question]\nXQuestionX\n"
    "[The Start of Assistant 1s Answer]\nXAssistant1X\n[The End of Assistant 1s Answer]\n"
    "[The Start of Assistant 2s Answer]\nXAssistant2X\n[The End of Assistant 2s Answer]\n[System]\n"
    "We would like to request your feedback on the performance of two AI assistants in response to the user question "
    "and audio description displayed above. AI assistants are provided with detailed audio descriptions and questions.\n"
    "Please rate the helpfulness, relevance, accuracy, and comprehensiveness of their responses. "
    "Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall "
    "performance. Please output a single line containing only two values indicating the scores for Assistant 1 and 2, "
    "respectively. The two scores are separated by a space."
)
# score_chat.py: temperature 1.0 (it also raises half the requests to 2.0 at random, unseeded: not reproduced)
CHAT_SAMPLING = Sampling(samples=1, temperature=1.0, max_tokens=1024)


def read_airbench(data_dir: str | Path, part: str) -> list[dict[str, Any]]:
    """The entries of ``DIR/{part}/{part}_meta.json`` with ``audio`` set to each file's path.

    Raises:
        MissingBenchmarkData: the meta file or an entry's audio is missing (says how to download).
    """
    root = Path(data_dir) / part
    meta = root / f"{part}_meta.json"
    if not meta.is_file():
        raise MissingBenchmarkData(f"AIR-Bench {part}: {meta} is missing. Download AIR-Bench with: "
                                   + DOWNLOAD.format(dir=data_dir))
    entries = json.loads(meta.read_text())
    for entry in entries:
        entry["audio"] = str(root / f"{entry['task_name']}_{entry['dataset_name']}" / entry["path"])
    return entries


def _require_audio(items: Sequence[EvalItem], data_dir: str | Path) -> list[EvalItem]:
    missing = [item.audio for item in items if not Path(item.audio).is_file()]
    if missing:
        raise MissingBenchmarkData(f"AIR-Bench: {len(missing)} audio files are missing, e.g. {missing[0]}. "
                                   "Download AIR-Bench with: " + DOWNLOAD.format(dir=data_dir))
    return items


def foundation_prompt(entry: dict[str, Any]) -> tuple[str, list[str]]:
    """The instruction written after the audio, and the options in letter order (absent ones left out)."""
    options = [entry[f"choice_{k}"] for k in "abcd" if entry.get(f"choice_{k}") is not None]
    choices = "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))
    return f"{QUESTION_PROMPT}\n{entry['question']}\n{choices}\n{OPTION_ONLY}", options


class FoundationSubset(BenchmarkSubset):
    """One Foundation speech task (all its datasets); strict and official-first-character readings."""

    group: ClassVar[str] = "airbench"
    max_new_tokens: ClassVar[int] = 32

    def __init__(self, column: str, data_dir: str | Path) -> None:
        self.column, self.task_name, self.data_dir = column, AIRBENCH_COLUMNS[column], data_dir
        self.name = column.lower()

    def items(self) -> list[EvalItem]:
        items = []
        for entry in read_airbench(self.data_dir, "Foundation"):
            if entry["task_name"] != self.task_name:
                continue
            instruction, options = foundation_prompt(entry)
            items.append(EvalItem(
                f"airbench/{self.task_name}_{entry['dataset_name']}/{entry['uniq_id']}", self.name,
                entry["dataset_name"], entry["audio"], "", instruction=instruction,
                reference={"options": options, "answer": options.index(entry["answer_gt"])}))
        return _require_audio(items, self.data_dir)

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        options = item.reference["options"]
        truth = item.reference["answer"]
        first = airbench_official_letter(answer, LETTERS[: len(options)])
        parsed = parse_choice(answer, options)
        return {"official": None if first is None else float(LETTERS.index(first) == truth),
                "strict": float(parsed == truth), "parsed": parsed, "official_letter": first}

    def summarize(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Per dataset as the official scorer reports it, and the column as their mean."""
        by_dataset = defaultdict(list)
        for record in records:
            by_dataset[record["subtask"]].append(record)
        parts = {name: super(FoundationSubset, self).summarize(rows) for name, rows in sorted(by_dataset.items())}
        return {
            "n": len(records),
            "official": _round(mean_present([p["official"] for p in parts.values()])),
            "strict": _round(mean_present([p["strict"] for p in parts.values()])),
            "unparsed": sum(p["unparsed"] for p in parts.values()),
            "dropped_officially": sum(r["official"] is None for r in records),
            "scale": "percent", "datasets": parts,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def chat_scores(reply: str) -> tuple[int, int] | None:
    """The judge's two scores (reference, system) as the official tally reads them, or ``None``."""
    parts = reply.strip().replace("\n", "").split(" ")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    scores = int(parts[0]), int(parts[1])
    return scores if max(scores) <= 10 else None


class ChatSubset(BenchmarkSubset):
    """Chat (speech): the judge's 1-10 score of the system's answer beside the reference answer."""

    name: ClassVar[str] = "chat"
    column: ClassVar[str] = "Chat"
    group: ClassVar[str] = "airbench"
    scale: ClassVar[str] = "judge"
    max_new_tokens: ClassVar[int] = 512

    def __init__(self, data_dir: str | Path, judge: CachedJudge | None) -> None:
        if judge is None:
            raise ValueError("AIR-Bench Chat is scored by a judge: give --judge-url and --judge-model")
        self.data_dir, self.judge = data_dir, judge

    def items(self) -> list[EvalItem]:
        items = [
            EvalItem(f"airbench/chat/{e['task_name']}_{e['dataset_name']}/{e['uniq_id']}", self.name, e["task_name"],
                     e["audio"], "", instruction=e["question"],
                     reference={"answer_gt": e["answer_gt"], "meta_info": e["meta_info"]})
            for e in read_airbench(self.data_dir, "Chat") if e["task_name"] in CHAT_SPEECH_TASKS
        ]
        return _require_audio(items, self.data_dir)

    def score(self, item: EvalItem, answer: str) -> dict[str, Any]:
        ref = item.reference
        prompt = (CHAT_PROMPT.replace("XAudioX", ref["meta_info"]).replace("XQuestionX", item.instruction)
                  .replace("XAssistant1X", ref["answer_gt"]).replace("XAssistant2X", answer))
        reply = self.judge.ask(prompt, CHAT_SAMPLING)[0]
        scores = chat_scores(reply)
        # officially an unreadable reply is dropped; strictly it counts as the lowest score
        return {"official": None if scores is None else float(scores[1]),
                "strict": 1.0 if scores is None else float(scores[1]),
                "parsed": scores, "reference_score": None if scores is None else scores[0], "judge_reply": reply}


def airbench_subsets(data_dir: str | Path, judge: CachedJudge | None, *, chat: bool = True) -> list[BenchmarkSubset]:
    """The six Foundation speech columns and, when ``chat``, the Chat column, checked for their meta files."""
    read_airbench(data_dir, "Foundation")
    subsets: list[BenchmarkSubset] = [FoundationSubset(column, data_dir) for column in AIRBENCH_COLUMNS]
    if chat:
        read_airbench(data_dir, "Chat")
        subsets.append(ChatSubset(data_dir, judge))
    return subsets

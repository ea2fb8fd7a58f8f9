"""Run task sets through systems: per-item jsonl, a JSON summary and a markdown table.

Every item of every task is answered and scored, in a fixed order, greedily; nothing is sampled and
nothing is dropped, so two runs write identical files (timings go to ``timing.json``, apart).

Open-ended items (``parity`` tasks) are scored without a right answer: the reference system (``text``)
answers from the oracle transcript, and each system's score is the per-token cross-entropy of that
answer under the system's own input (lower is better; the reference's own value is the floor). When a
judge is configured, each system's own answer is also judged (1-5).

Scored items (``accuracy`` tasks) are also reported relative to the ``text`` system when it runs: a
system's mean score on the items that ``text`` answers right (score 1). That separates what a speech
model fails to hear from what its LLM cannot answer even when it reads the words.

Output layout::

    OUT/reference.jsonl          the reference system's answers to the open-ended items
    OUT/SYSTEM/items.jsonl       one line per item: answer, reference, score
    OUT/summary.json             per system, task and subtask: n, metric, value; the judge's settings
    OUT/table.md                 one table per group, systems as rows
    OUT/timing.json              seconds per system (not part of the deterministic outputs)
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from azeros.eval.judge import JudgeClient
from azeros.eval.report import write_tables
from azeros.eval.systems import System
from azeros.eval.task import EvalItem, Task
from azeros.inference import Answer

__all__ = ["BenchmarkResult", "run_benchmark"]


@dataclass
class BenchmarkResult:
    """What a benchmark run produced.

    Attributes:
        summary: ``{"systems": {system: {task: {subtask: {...}}}}, "tasks": ..., "judge": ...}``.
        table: the markdown table.
        seconds: wall time per system (the reference's answers are counted under ``reference``).
        out_dir: where the files are.
    """

    summary: dict[str, Any]
    table: str
    seconds: dict[str, float]
    out_dir: Path


def _batches(items: Sequence[EvalItem], size: int) -> Iterator[Sequence[EvalItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _answer_all(system: System, items: Sequence[EvalItem], max_new_tokens: int, batch_size: int,
                bar: tqdm) -> list[Answer]:
    answers: list[Answer] = []
    for batch in _batches(items, batch_size):
        answers.extend(system.answer(batch, max_new_tokens))
        bar.update(len(batch))
    return answers


def _parity_records(
    system: System, task: Task, items: Sequence[EvalItem], references: Mapping[str, Answer],
    judge: JudgeClient | None, max_new_tokens: int, batch_size: int, bar: tqdm,
) -> list[dict[str, Any]]:
    given = [references[item.id] for item in items]
    values: list[float] = []
    for start in range(0, len(items), batch_size):
        values.extend(system.cross_entropy(items[start : start + batch_size], given[start : start + batch_size]))
    records = [{"reference_answer": ref.text, "parity": round(value, 6)} for ref, value in zip(given, values)]
    if judge is not None:
        answers = _answer_all(system, items, max_new_tokens, batch_size, bar)
        for record, item, answer in zip(records, items, answers, strict=True):
            verdict = judge.judge(item.transcript, answer.text)
            record.update(answer=answer.text, finish_reason=answer.finish_reason, judge=verdict.score,
                          judge_parsed=verdict.parsed, judge_reply=verdict.reply)
            record.update(task.score(item, answer.text))
    else:
        bar.update(len(items))
    return records


def _summarize(task: Task, records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per subtask: n and the mean of its scores (every item counts, unparsed ones as wrong)."""
    by_subtask: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_subtask[record["subtask"]].append(record)
    out: dict[str, dict[str, Any]] = {}
    for subtask, rows in by_subtask.items():
        if task.metric == "parity":
            out[subtask] = {"metric": "parity", "n": len(rows),
                            "value": round(sum(r["parity"] for r in rows) / len(rows), 4)}
            if "judge" in rows[0]:
                out[f"{subtask}_judge"] = {
                    "metric": "judge", "n": len(rows), "value": round(sum(r["judge"] for r in rows) / len(rows), 4),
                    "unparsed": sum(not r["judge_parsed"] for r in rows),
                }
        else:
            entry = {"metric": "accuracy", "n": len(rows), "value": round(sum(r["score"] for r in rows) / len(rows), 4)}
            if any("parsed" in r for r in rows):
                entry["unparsed"] = sum(r.get("parsed") is None for r in rows)
            out[subtask] = entry
    return out


def _add_relative(results: dict[str, dict[str, Any]], records: Mapping[str, Sequence[dict[str, Any]]],
                  tasks: Sequence[Task], relative_to: str) -> None:
    """Add ``relative`` and ``n_relative`` to every accuracy entry: the mean score on the items ``relative_to`` gets right."""
    right = {r["id"] for r in records[relative_to] if r.get("score") == 1.0}
    accuracy_tasks = {task.name for task in tasks if task.metric == "accuracy"}
    for system, rows in records.items():
        by_subtask: dict[tuple[str, str], list[float]] = defaultdict(list)
        for row in rows:
            if row["task"] in accuracy_tasks and row["id"] in right:
                by_subtask[row["task"], row["subtask"]].append(row["score"])
        for (task, subtask), scores in by_subtask.items():
            results[system][task][subtask].update(relative=round(sum(scores) / len(scores), 4), n_relative=len(scores))


def _item_record(item: EvalItem) -> dict[str, Any]:
    return {"id": item.id, "task": item.task, "subtask": item.subtask, "audio": item.audio,
            "transcript": item.transcript, "instruction": item.instruction, "reference": dict(item.reference)}


def _write_jsonl(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def run_benchmark(
    systems: Sequence[System],
    tasks: Sequence[Task],
    out_dir: str | Path,
    *,
    reference: System | None = None,
    judge: JudgeClient | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Answer and score every item of ``tasks`` with every system; write the files described above.

    Args:
        systems: the systems, in table order.
        tasks: the task sets.
        out_dir: the output folder (files in it are overwritten).
        reference: the system whose greedy answers open-ended items are scored against (normally ``text``);
            required when a task's metric is ``parity``.
        judge: scores answers to open-ended items as well, when given.
        batch_size: items per ``answer`` / ``cross_entropy`` call.
        max_new_tokens: a cap on every task's answer length (quick runs); ``None``: each task's own.
        progress: show progress bars.

    Returns:
        The summary, the table and the timings.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task_items = {task.name: task.items() for task in tasks}
    limits = {task.name: min(task.max_new_tokens, max_new_tokens or task.max_new_tokens) for task in tasks}
    seconds: dict[str, float] = {}
    references: dict[str, Answer] = {}
    parity_tasks = [task for task in tasks if task.metric == "parity"]
    if parity_tasks:
        if reference is None:
            raise ValueError(f"tasks {[t.name for t in parity_tasks]} need a reference system (e.g. text)")
        start = time.perf_counter()
        reference_rows = []
        with tqdm(total=sum(len(task_items[t.name]) for t in parity_tasks), desc=f"reference ({reference.name})",
                  unit="item", disable=not progress) as bar:
            for task in parity_tasks:
                items = task_items[task.name]
                for item, answer in zip(items, _answer_all(reference, items, limits[task.name], batch_size, bar)):
                    references[item.id] = answer
                    reference_rows.append({"id": item.id, "answer": answer.text,
                                           "finish_reason": answer.finish_reason})
        _write_jsonl(out / "reference.jsonl", reference_rows)
        seconds["reference"] = round(time.perf_counter() - start, 1)

    results: dict[str, dict[str, Any]] = {}
    all_records: dict[str, list[dict[str, Any]]] = {}
    for system in systems:
        start = time.perf_counter()
        system_records: list[dict[str, Any]] = []
        results[system.name] = {}
        total = sum(len(v) for v in task_items.values())
        with tqdm(total=total, desc=system.name, unit="item", disable=not progress) as bar:
            for task in tasks:
                items = task_items[task.name]
                if task.metric == "parity":
                    scored = _parity_records(system, task, items, references, judge, limits[task.name], batch_size, bar)
                else:
                    answers = _answer_all(system, items, limits[task.name], batch_size, bar)
                    scored = [{"answer": a.text, "finish_reason": a.finish_reason, **task.score(item, a.text)}
                              for item, a in zip(items, answers, strict=True)]
                records = [{**_item_record(item), **extra} for item, extra in zip(items, scored, strict=True)]
                results[system.name][task.name] = _summarize(task, records)
                system_records.extend(records)
        _write_jsonl(out / system.name / "items.jsonl", system_records)
        all_records[system.name] = system_records
        seconds[system.name] = round(time.perf_counter() - start, 1)
    relative_to = "text" if "text" in all_records else None
    if relative_to is not None:
        _add_relative(results, all_records, tasks, relative_to)

    summary = {
        "systems": results,
        "tasks": {t.name: {"group": t.group, "metric": t.metric, "n": len(task_items[t.name]),
                           "max_new_tokens": limits[t.name]} for t in tasks},
        "reference": reference.name if parity_tasks and reference is not None else None,
        "relative_to": relative_to,
        "judge": judge.describe() if judge is not None else None,
        "decoding": "greedy",
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    table = write_tables(summary, out)
    (out / "timing.json").write_text(json.dumps(seconds, indent=2) + "\n")
    return BenchmarkResult(summary, table, seconds, out)

"""Run a published benchmark through systems: resumable answers, scoring two ways, the paper's table.

Every system answers every item greedily, in file order, in batches; each answer is appended to
``OUT/SYSTEM/answers.jsonl`` as soon as its batch is done, so a killed run continues where it stopped
and never asks a system twice. Scoring then reads every answer (judge replies come from the judge's
cache after the first time) and rewrites the scored files whole, so two runs write identical files.

Output layout::

    OUT/SYSTEM/answers.jsonl    one line per answered item, in answering order (the resume log)
    OUT/SYSTEM/items.jsonl      one line per item: answer, official and strict scores, what was parsed
    OUT/summary.json            per system and subset: n, official, strict, unparsed; per column; the total
    OUT/table.md                the paper's columns, official then strict; published rows with --with-paper
    OUT/chart.png               official figures per column (judge scores scaled to 0-100)
    OUT/judge-cache/            every judge request and reply (see :mod:`azeros.eval.benchmarks.judging`)

Systems that read the oracle text (``text``...) skip benchmarks without transcripts (AIR-Bench), as the
paper does (N/A).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from azeros.eval.benchmarks.base import BenchmarkSubset, mean_present
from azeros.eval.benchmarks.judging import CachedJudge
from azeros.eval.benchmarks.paper import PUBLISHED_AIRBENCH, PUBLISHED_VOICEBENCH
from azeros.eval.benchmarks.voicebench import overall
from azeros.eval.systems import System, TextSystem
from azeros.eval.task import EvalItem

__all__ = ["AIRBENCH", "VOICEBENCH", "Layout", "run_published"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """How a benchmark is tabulated like the paper.

    Attributes:
        title: the table's title.
        columns: the paper's columns, in its order.
        total_name: the summary column (``Overall``, ``Avg``).
        total: the summary figure from ``{column: figure}`` of the columns it covers.
        total_columns: the columns the total covers.
        judge_max: the top of the judge's scale (5 or 10), to chart judge columns in 0-100.
        published: the paper's rows, ``{name: {column: figure}}``.
    """

    title: str
    columns: tuple[str, ...]
    total_name: str
    total: Callable[[dict[str, float | None]], float | None]
    total_columns: tuple[str, ...]
    judge_max: int
    published: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def _average(figures: dict[str, float | None]) -> float | None:
    values = list(figures.values())
    return None if not values or None in values else round(sum(values) / len(values), 2)


_VB_COLUMNS = ("AlpacaEval", "CommonEval", "WildVoice", "SD-QA", "BBH", "AdvBench", "IFEval", "OBQA", "MMSU")
VOICEBENCH = Layout("VoiceBench", _VB_COLUMNS, "Overall", overall, _VB_COLUMNS, 5, PUBLISHED_VOICEBENCH)
_AIR_FOUNDATION = ("Gender", "Emotion", "Age", "LID", "Entity", "Intent")
AIRBENCH = Layout("AIR-Bench (speech)", (*_AIR_FOUNDATION, "Chat"), "Avg", _average, _AIR_FOUNDATION, 10,
                  PUBLISHED_AIRBENCH)


def _read_answers(path: Path) -> dict[str, dict[str, Any]]:
    """Answers already given; a last line cut short by a kill is dropped (and answered again)."""
    if not path.is_file():
        return {}
    done, kept = {}, []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s: dropping a torn line (the run was killed while writing it)", path)
            break
        done[record["id"]] = record
        kept.append(line)
    if len(kept) != len(path.read_text().splitlines()):
        path.write_text("".join(f"{line}\n" for line in kept))
    return done


def _answer_missing(system: System, subset: BenchmarkSubset, items: Sequence[EvalItem], path: Path,
                    done: dict[str, dict[str, Any]], batch_size: int, max_new_tokens: int | None,
                    progress: bool) -> None:
    todo = [item for item in items if item.id not in done]
    limit = min(subset.max_new_tokens, max_new_tokens or subset.max_new_tokens)
    with tqdm(total=len(items), initial=len(items) - len(todo), desc=f"{system.name} {subset.name}", unit="item",
              disable=not progress) as bar, path.open("a") as file:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            for item, answer in zip(batch, system.answer(batch, limit), strict=True):
                record = {"id": item.id, "answer": answer.text, "finish_reason": answer.finish_reason}
                file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                done[item.id] = record
            file.flush()
            bar.update(len(batch))


def _score_all(subset: BenchmarkSubset, items: Sequence[EvalItem], answers: Mapping[str, dict[str, Any]],
               concurrency: int, progress: bool, desc: str) -> list[dict[str, Any]]:
    def score(item: EvalItem) -> dict[str, Any]:
        given = answers[item.id]
        return {"id": item.id, "subset": subset.name, "subtask": item.subtask, "prompt": item.transcript,
                "instruction": item.instruction, "answer": given["answer"],
                "finish_reason": given["finish_reason"], **subset.score(item, given["answer"])}

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return list(tqdm(pool.map(score, items), total=len(items), desc=f"{desc} scoring", unit="item",
                         disable=not progress))


def _columns(layout: Layout, subsets: Sequence[BenchmarkSubset], results: Mapping[str, dict[str, Any]],
             reading: str) -> dict[str, float | None]:
    """``{column: figure}`` of one reading (``official`` or ``strict``), the mean over a column's subsets."""
    figures: dict[str, list[float | None]] = {}
    for subset in subsets:
        figures.setdefault(subset.column, []).append(results[subset.name][reading])
    columns = {c: mean_present(v) if None not in v else None for c, v in figures.items()}
    return {c: None if columns[c] is None else round(columns[c], 2) for c in layout.columns if c in columns}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown_table(layout: Layout, summary: Mapping[str, Any], with_paper: bool) -> str:
    """The paper-shaped tables: official scoring (and published rows), then strict scoring."""
    ran = [c for c in layout.columns if any(c in s.get("official", {}) for s in summary["systems"].values())]
    header = ["system", *ran, layout.total_name]
    lines = []
    for reading, note in (("official", "official scoring, random fallbacks seeded"),
                          ("strict", "strict scoring: unparseable = wrong, empty = not a refusal, ties = no")):
        lines += [f"### {layout.title}: {note}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for name, entry in summary["systems"].items():
            if entry.get("skipped"):
                lines.append(f"| {name} | " + " | ".join(["N/A"] * (len(header) - 1)) + " |")
                continue
            figures = entry[reading]
            cells = [_cell(figures.get(c)) for c in ran] + [_cell(entry[f"{reading}_total"])]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if reading == "official" and with_paper:
            for name, row in layout.published.items():
                cells = [_cell(row.get(c)) for c in ran] + [_cell(row.get(layout.total_name))]
                lines.append(f"| {name} (published, paper Table 5) | " + " | ".join(cells) + " |")
        lines.append("")
    counts = ", ".join(f"{name} {info['n']}" for name, info in summary["subsets"].items())
    return "\n".join(lines) + f"items: {counts}; judge: {summary['judge']['model'] if summary['judge'] else 'none'}\n"


def write_chart(layout: Layout, summary: Mapping[str, Any], path: Path) -> None:
    """Grouped bars of the official figures per column (judge columns scaled to 0-100)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    systems = {n: e for n, e in summary["systems"].items() if not e.get("skipped")}
    columns = [c for c in layout.columns if any(c in e["official"] for e in systems.values())] + [layout.total_name]
    judged = set(summary["judge_columns"])
    figure, axis = plt.subplots(figsize=(max(6.0, 0.9 * len(columns) * max(1, len(systems)) ** 0.5), 3.6))
    width = 0.8 / max(1, len(systems))
    for k, (name, entry) in enumerate(systems.items()):
        values = [entry["official"].get(c) if c != layout.total_name else entry["official_total"] for c in columns]
        scaled = [0.0 if v is None else v * (100 / layout.judge_max if c in judged else 1)
                  for v, c in zip(values, columns)]
        axis.bar([i + k * width for i in range(len(columns))], scaled, width, label=name)
    axis.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(columns))], columns, rotation=30, ha="right")
    axis.set_ylabel(f"official (judge 1-{layout.judge_max} scaled to 0-100)")
    axis.legend(fontsize="small")
    axis.set_title(layout.title)
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same bytes each run
    plt.close(figure)


def run_published(
    layout: Layout,
    systems: Sequence[System],
    subsets: Sequence[BenchmarkSubset],
    out_dir: str | Path,
    *,
    judge: CachedJudge | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    concurrency: int = 8,
    with_paper: bool = False,
    progress: bool = True,
) -> tuple[dict[str, Any], str]:
    """Answer (resuming), score and tabulate ``subsets`` with every system; write the files listed above.

    Args:
        layout: the benchmark's table (:data:`VOICEBENCH`, :data:`AIRBENCH`).
        systems: the systems, in table order.
        subsets: the subsets, in the paper's column order.
        out_dir: the output folder (answers in it are reused).
        judge: the judge of the judged subsets (recorded in the summary).
        batch_size: items per ``answer`` call.
        max_new_tokens: a cap on every subset's answer length (quick runs).
        concurrency: items scored at once (judge requests in flight).
        with_paper: add the paper's published rows to the table.
        progress: show progress bars.

    Returns:
        The summary and the markdown table.
    """
    out = Path(out_dir)
    items = {subset.name: subset.items() for subset in subsets}
    summary: dict[str, Any] = {
        "benchmark": layout.title, "systems": {}, "decoding": "greedy", "max_new_tokens": max_new_tokens,
        "subsets": {s.name: {"column": s.column, "n": len(items[s.name]), "scale": s.scale} for s in subsets},
        "judge": judge.describe() if judge is not None else None,
        "judge_columns": sorted({s.column for s in subsets if s.scale == "judge"}),
    }
    for system in systems:
        if isinstance(system, TextSystem) and not any(i.transcript for v in items.values() for i in v):
            log.info("%s reads transcripts, which %s does not have: N/A", system.name, layout.title)
            summary["systems"][system.name] = {"skipped": "no transcripts to read"}
            continue
        folder = out / system.name
        folder.mkdir(parents=True, exist_ok=True)
        answers = _read_answers(folder / "answers.jsonl")
        records, results = [], {}
        for subset in subsets:
            _answer_missing(system, subset, items[subset.name], folder / "answers.jsonl", answers, batch_size,
                            max_new_tokens, progress)
            scored = _score_all(subset, items[subset.name], answers, concurrency, progress,
                                f"{system.name} {subset.name}")
            results[subset.name] = subset.summarize(scored)
            records.extend(scored)
        with (folder / "items.jsonl").open("w") as file:
            file.writelines(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        entry: dict[str, Any] = {"subsets": results}
        for reading in ("official", "strict"):
            figures = _columns(layout, subsets, results, reading)
            covered = {c: figures[c] for c in layout.total_columns if c in figures}
            entry[reading] = figures
            entry[f"{reading}_total"] = layout.total(covered) if len(covered) == len(layout.total_columns) else None
        summary["systems"][system.name] = entry
    if judge is not None:
        log.info("judge: %d requests sent (the rest from %s)", judge.requests_sent, judge.cache_dir)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    table = markdown_table(layout, summary, with_paper)
    (out / "table.md").write_text(table)
    write_chart(layout, summary, out / "chart.png")
    return summary, table

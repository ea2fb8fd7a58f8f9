"""Tables and charts of a benchmark summary, one per task group, systems as rows (like the paper's Tables 3-5)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["group_columns", "markdown_tables", "write_charts", "write_tables"]

# How each metric is shown: header suffix and cell format.
_SHOW = {
    "accuracy": (" (acc. %)", lambda v: f"{100 * v:.1f}"),
    "parity": (" (CE, lower better)", lambda v: f"{v:.3f}"),
    "judge": (" (judge 1-5)", lambda v: f"{v:.2f}"),
}


def group_columns(summary: Mapping[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """Per group, its columns ``(task, subtask, metric)`` in the order the tasks ran."""
    groups: dict[str, list[tuple[str, str, str]]] = {}
    first_system = next(iter(summary["systems"].values()), {})
    for task, info in summary["tasks"].items():
        for subtask, entry in first_system.get(task, {}).items():
            groups.setdefault(info["group"], []).append((task, subtask, entry["metric"]))
    return groups


def _rows(summary: Mapping[str, Any], columns: list[tuple[str, str, str]]) -> dict[str, list[float]]:
    rows = {}
    for system, tasks in summary["systems"].items():
        rows[system] = [tasks[task][subtask]["value"] for task, subtask, _ in columns]
        accuracy = [v for v, (_, _, metric) in zip(rows[system], columns) if metric == "accuracy"]
        if len(accuracy) > 1:
            rows[system].append(sum(accuracy) / len(accuracy))
    return rows


def _relative_lines(summary: Mapping[str, Any], columns: list[tuple[str, str, str]]) -> list[str]:
    """Rows of the scores relative to ``summary["relative_to"]``, for the columns that have them."""
    systems = summary["systems"]
    baseline = summary.get("relative_to")
    picked = [(t, s) for t, s, metric in columns if metric == "accuracy"
              and all("relative" in systems[name][t][s] for name in systems)]
    if baseline is None or not picked:
        return []
    counts = [systems[baseline][t][s]["n_relative"] for t, s in picked]
    lines = ["", f"relative to `{baseline}`: % of the items `{baseline}` gets right (n = {', '.join(map(str, counts))}); "
             "all: over those items pooled", "",
             "| system | " + " | ".join(f"{s} (rel. %)" for _, s in picked) + " | all (rel. %) |",
             "|---" * (len(picked) + 2) + "|"]
    for name, tasks in systems.items():
        values = [tasks[t][s]["relative"] for t, s in picked]
        pooled = sum(v * n for v, n in zip(values, counts, strict=True)) / sum(counts)
        cells = [f"{100 * v:.1f}" for v in values] + [f"{100 * pooled:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown_tables(summary: Mapping[str, Any]) -> str:
    """One markdown table per group, with the mean accuracy of groups that have several accuracy columns."""
    sections = []
    for group, columns in group_columns(summary).items():
        headers = [f"{subtask}{_SHOW[metric][0]}" for _, subtask, metric in columns]
        shown = list(columns)
        if sum(metric == "accuracy" for *_, metric in columns) > 1:
            headers.append("avg (acc. %)")
            shown.append(("", "avg", "accuracy"))
        counts = [summary["systems"][next(iter(summary["systems"]))][t][s]["n"] for t, s, _ in columns]
        lines = [f"### {group} (n = {', '.join(map(str, counts))})", "",
                 "| system | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
        for system, values in _rows(summary, columns).items():
            cells = [_SHOW[metric][1](value) for value, (*_, metric) in zip(values, shown, strict=True)]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        sections.append("\n".join(lines + _relative_lines(summary, columns)))
    return "\n\n".join(sections) + "\n"


def write_charts(summary: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """A PNG bar chart per group (one panel per metric, a bar per system), as ``OUT/chart_{group}.png``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    paths = []
    systems = list(summary["systems"])
    for group, columns in group_columns(summary).items():
        rows = _rows(summary, columns)
        metrics = list(dict.fromkeys(metric for *_, metric in columns))
        figure, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 1.2 * len(columns) * len(systems) ** 0.5) + 2,
                                                              3.6), squeeze=False)
        for axis, metric in zip(axes[0], metrics):
            picked = [i for i, (*_, m) in enumerate(columns) if m == metric]
            names = [columns[i][1] for i in picked]
            if metric == "accuracy" and len(picked) > 1:
                picked.append(len(columns))  # the avg column
                names.append("avg")
            width = 0.8 / len(systems)
            for k, system in enumerate(systems):
                scale = 100 if metric == "accuracy" else 1
                axis.bar([i + k * width for i in range(len(picked))], [scale * rows[system][j] for j in picked],
                         width, label=system)
            axis.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(picked))], names,
                            rotation=30, ha="right")
            axis.set_ylabel(_SHOW[metric][0].strip(" ()"))
        axes[0][-1].legend(fontsize="small")
        figure.suptitle(group)
        figure.tight_layout()
        path = Path(out_dir) / f"chart_{group}.png"
        figure.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same bytes each run
        plt.close(figure)
        paths.append(path)
    return paths


def write_tables(summary: Mapping[str, Any], out_dir: str | Path) -> str:
    """Write ``table.md`` and the charts into ``out_dir``; returns the markdown."""
    table = markdown_tables(summary)
    (Path(out_dir) / "table.md").write_text(table)
    write_charts(summary, out_dir)
    return table

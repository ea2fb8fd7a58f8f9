"""Learning curves: held-out accuracy of a training run's exports against steps and utterances seen.

A run with ``run.export_every`` leaves ``exports/step-{N}`` model folders beside ``final``. Each is
evaluated on the held-out tasks (:func:`held_out_tasks`: spoken questions by held-out engines and
speakers, and the real recordings) beside the ``text`` system on the same items, so every point is a
raw accuracy and an accuracy relative to what the frozen LLM answers when it reads the words. The
projector weights are swapped into one loaded model, so the LLM and encoders load once; the text
system's answers are kept in ``OUT/text_answers.json`` and a point already evaluated is read back, so
a curve can be extended while its run goes on.

Output: ``OUT/curve.json`` (one record per export), ``OUT/curve.png`` (relative and raw accuracy, and
repeat recall, against steps and against utterances seen) and each point's benchmark folder.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azeros.data.corpus import real_recordings_manifest
from azeros.eval.heard import heard_word_error_rate, hears_in_tokens
from azeros.eval.runner import run_benchmark
from azeros.eval.systems import AzerosSystem, System, build_systems
from azeros.eval.task import EvalItem, Task
from azeros.eval.tasks import RealChecksTask, SpokenQATask
from azeros.inference import Answer, load_projectors

__all__ = ["held_out_tasks", "learning_curve", "run_exports"]

logger = logging.getLogger(__name__)


def held_out_tasks(data_dir: str | Path, voices_per_question: int = 1) -> list[Task]:
    """Held-out spoken QA (content scored) and the real recordings' repeat and questions."""
    data = Path(data_dir)
    return [SpokenQATask(data / "spoken_qa", voices_per_question=voices_per_question),
            RealChecksTask(real_recordings_manifest(data / "real"))]


def run_exports(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of a run's exports and its ``final`` folder, by step.

    Raises:
        FileNotFoundError: the run has no export.
    """
    run = Path(run_dir)
    points = [(int(m.group(1)), p) for p in (run / "exports").glob("step-*")
              if (m := re.fullmatch(r"step-(\d+)", p.name)) and (p / "config.json").is_file()]
    log = run / "log.jsonl"
    final = run / "final" / "config.json"
    # ``final`` is the last step's only once the run has ended: a resumed run logs past an older final
    if final.is_file() and log.is_file() and final.stat().st_mtime >= log.stat().st_mtime:
        # the last training step (align records count their own steps)
        last = max(r["step"] for r in map(json.loads, filter(str.strip, log.open())) if r["kind"] == "train")
        points.append((last, run / "final"))
    if not points:
        raise FileNotFoundError(f"{run}: no exports/step-N or final model (train with run.export_every=N)")
    return sorted(points)


def _utterances_seen(run_dir: Path) -> dict[int, int]:
    """Cumulative training utterances at each logged step (from the run's ``log.jsonl``)."""
    seen, total = {0: 0}, 0  # step 0: an aligned run's first export, before any LLM pass
    for line in (run_dir / "log.jsonl").open():
        record = json.loads(line)
        if record.get("kind") == "train":
            total += record["samples"]
            seen[record["step"]] = total
    return seen


class _RememberedAnswers(System):
    """A system whose answers are kept in a JSON file by item id, so a deterministic system answers once."""

    def __init__(self, system: System, path: Path) -> None:
        self.system, self.name, self.path = system, system.name, path
        self.known = json.loads(path.read_text()) if path.is_file() else {}

    def answer(self, items: Sequence[EvalItem], max_new_tokens: int) -> list[Answer]:
        missing = [item for item in items if item.id not in self.known]
        if missing:
            for item, answer in zip(missing, self.system.answer(missing, max_new_tokens), strict=True):
                self.known[item.id] = [answer.text, answer.finish_reason, answer.token_ids]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.known))
        return [Answer(*self.known[item.id]) for item in items]

    def cross_entropy(self, items: Sequence[EvalItem], answers: Sequence[Answer]) -> list[float]:
        return self.system.cross_entropy(items, answers)


def _pooled(entries: dict[str, dict[str, Any]], key: str, exclude: Sequence[str] = ()) -> float | None:
    """The mean of ``key`` over all items of the subtasks (``relative``: over the items text gets right)."""
    count = "n_relative" if key == "relative" else "n"
    picked = [entry for name, entry in entries.items() if key in entry and name not in exclude]
    total = sum(entry[count] for entry in picked)
    return round(sum(entry[key] * entry[count] for entry in picked) / total, 4) if total else None


def learning_curve(run_dir: str | Path, out_dir: str | Path, *, data_dir: str | Path = "data/eval",
                   voices_per_question: int = 1, batch_size: int = 16, device: str = "cpu") -> list[dict[str, Any]]:
    """Evaluate every export of a run on the held-out tasks; write ``curve.json`` and ``curve.png``.

    Args:
        run_dir: a training run's output folder.
        out_dir: where the curve and each point's results go.
        data_dir: where the spoken questions and real recordings are written.
        voices_per_question: held-out voices per spoken question.
        batch_size: items per generation call.
        device: where the model goes.

    Returns:
        One record per export: step, utterances seen, raw and relative accuracy over all spoken questions
        (repeats apart; relative: over the questions text gets right), repeat recall (synthetic and real),
        and for a compressing projector the word error rate of what it heard (``step-N/heard.jsonl``).
    """
    run, out = Path(run_dir), Path(out_dir)
    points = run_exports(run)
    seen = _utterances_seen(run)
    tasks = held_out_tasks(data_dir, voices_per_question)
    (text, speech), _ = build_systems(["text", f"step={points[0][1]}"], device=device)
    text = _RememberedAnswers(text, out / "text_answers.json")
    records = []
    for step, folder in points:
        summary_file = out / f"step-{step}" / "summary.json"
        heard_file = out / f"step-{step}" / "heard.json"
        needs_heard = hears_in_tokens(speech.model) and not heard_file.is_file()
        if needs_heard or not summary_file.is_file():
            load_projectors(speech.model, folder)  # once per point, for whichever of the two is missing
        if summary_file.is_file():
            summary = json.loads(summary_file.read_text())
        else:
            system = AzerosSystem(speech.model, f"step-{step}")
            summary = run_benchmark([text, system], tasks, out / f"step-{step}", batch_size=batch_size,
                                    progress=False).summary
        own = summary["systems"][f"step-{step}"]
        if needs_heard:
            items = [item for task in tasks for item in task.items()]
            rates = heard_word_error_rate(speech.model, items, out / f"step-{step}" / "heard.jsonl", batch_size)
            heard_file.write_text(json.dumps(rates) + "\n")
        record = {
            "step": step, "utterances": seen.get(step), "model": str(folder),
            "qa_accuracy": _pooled(own["spoken_qa"], "value", exclude=["repeat"]),
            "qa_relative": _pooled(own["spoken_qa"], "relative", exclude=["repeat"]),
            "text_qa_accuracy": _pooled(summary["systems"]["text"]["spoken_qa"], "value", exclude=["repeat"]),
            "repeat_recall": own["spoken_qa"]["repeat"]["value"],
            "real_repeat_recall": own["real_checks"]["repeat"]["value"],
            # compressing projectors: the word error rate of what the LLM reads (see azeros.eval.heard)
            "heard_wer": json.loads(heard_file.read_text())["wer"] if heard_file.is_file() else None,
        }
        logger.info("learning curve: %s", record)
        records.append(record)
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(records, indent=2) + "\n")
    _plot(records, out / "curve.png", run.name)
    return records


def _plot(records: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    for axis, key, label in ((axes[0][0], "step", "training steps"), (axes[0][1], "utterances", "utterances seen")):
        xs = [r[key] for r in records]
        for series, name in (("qa_relative", "spoken QA, % of text-only"), ("qa_accuracy", "spoken QA accuracy"),
                             ("repeat_recall", "repeat recall (held-out voices)"),
                             ("real_repeat_recall", "repeat recall (real recordings)")):
            axis.plot(xs, [100 * (r[series] or 0.0) for r in records], marker="o", label=name)
        if any(r.get("heard_wer") is not None for r in records):
            axis.plot(xs, [100 * (1 - r["heard_wer"]) if r.get("heard_wer") is not None else None for r in records],
                      marker="s", linestyle="--", label="words heard right (1 - WER of the projector's transcript)")
        axis.axhline(50, color="gray", linestyle=":", linewidth=1)
        axis.set_xlabel(label)
        axis.set_ylabel("%")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
    axes[0][1].legend(fontsize="small")
    figure.suptitle(f"held-out learning curve: {title}")
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)

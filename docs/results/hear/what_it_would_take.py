"""What it would take: the hearing the answers need, and the training data that hearing would need (session 13).

Left: spoken QA relative to text-only and real-recording recall against the word error rate of what the frozen LLM
reads (``wer_bridge.py``'s ``bridge.json``: the shipped projector's heard transcripts with a share of their errors
repaired, and Whisper tiny.en's), with the shipped model's own point. Right: the heard WER of aligned projectors
against distinct training utterances (``data_curve.json``; the varied-text runs fitted log-linearly) and the WER
the left panel asks for. Writes ``what_it_would_take.png`` and ``what_it_would_take.json`` beside this file:

    python docs/results/hear/what_it_would_take.py exp/hear/bridge exp/hear/eval-s12/azeros/items.jsonl
"""

import json
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
# the context projector (docs/results/hear, session 11): distinct training utterances, held-out heard WER on the
# 95-item split; the varied-text runs before it are data_curve.json's
CONTEXT = (45155, 0.5034)


def varied_text_points() -> list[tuple[int, float]]:
    """(utterances, held-out heard WER) of the aligned projectors as their texts grew more varied: the largest
    template-only run, data_curve.json's WordNet runs (steps grew with them), then the context projector."""
    curve = json.loads((HERE / "data_curve.json").read_text())
    runs = [max(curve["points"], key=lambda p: p["utterances"]), *curve["wordnet_points"]]
    return [(p["utterances"], p["held_out_wer"]) for p in runs] + [CONTEXT]


def crossing(xs: list[float], ys: list[float], level: float) -> float | None:
    """The x where the piecewise-linear line through (xs, ys), xs ascending, first falls below ``level``."""
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if (y0 - level) * (y1 - level) <= 0 and y0 != y1:
            return x0 + (level - y0) * (x1 - x0) / (y1 - y0)
    return None


def rows(path: Path) -> dict[str, dict]:
    return {row["id"]: row for row in map(json.loads, path.open())}


def main(bridge_dir: str, shipped_items: str) -> None:
    bridge = json.loads((Path(bridge_dir) / "bridge.json").read_text())
    text_right = [i for i, r in rows(Path(bridge_dir) / "text" / "items.jsonl").items()
                  if r["task"] == "spoken_qa" and r["score"] == 1.0]
    shipped = rows(Path(shipped_items))
    shipped_relative = sum(shipped[i]["score"] for i in text_right) / len(text_right)
    recordings = [r["score"] for r in shipped.values() if r["task"] == "real_checks" and r["subtask"] == "repeat"]
    shipped_recall = sum(recordings) / len(recordings)
    repaired = sorted((v for k, v in bridge.items() if k.startswith("heard-keep")), key=lambda v: v["wer_spoken"])
    wers = [v["wer_spoken"] for v in repaired]
    relative = [v["relative_to_text"] for v in repaired]
    recall = [v["real_recall"] for v in repaired]
    real_wers = [v["wer_real"] for v in repaired]
    wer_for_half = crossing(wers, relative, 0.5)
    wer_for_recall = crossing(sorted(real_wers), [r for _, r in sorted(zip(real_wers, recall))], 0.3)

    varied = varied_text_points()
    counts = np.array([c for c, _ in varied], dtype=float)
    heard_wers = [w for _, w in varied]
    slope, intercept = np.polyfit(np.log10(counts), heard_wers, 1)
    utterances_for = {f"{w:.3f}": round(10 ** ((w - intercept) / slope)) for w in (wer_for_half, 0.3) if w}

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
    left.plot(wers, [100 * r for r in relative], marker="o",
              label="LLM reads the shipped projector's transcript, errors repaired")
    left.plot(real_wers, [100 * r for r in recall], marker="s", linestyle="--",
              label="the same: real-recording repeat recall (x: WER on the recordings)")
    cascade = bridge["cascade"]
    left.plot([cascade["wer_spoken"]], [100 * cascade["relative_to_text"]], marker="D", linestyle="none", color="C2",
              label="cascade: LLM reads Whisper tiny.en's transcript")
    for name, marker, label in (("heard-words-only", "^", "its word errors only (punctuation repaired)"),
                                ("heard-punctuation-only", "v", "its punctuation errors only (words repaired)")):
        left.plot([bridge[name]["wer_spoken"]], [100 * bridge[name]["relative_to_text"]], marker=marker,
                  linestyle="none", color="C4" if marker == "^" else "C5", label=label)
    left.plot([bridge["heard-keep-1"]["wer_spoken"]], [100 * shipped_relative], marker="*", markersize=14,
              linestyle="none", color="C3", label="the shipped model hearing the audio (the same transcripts)")
    left.plot([bridge["heard-keep-1"]["wer_real"]], [100 * shipped_recall], marker="*", markersize=14,
              linestyle="none", color="C1", label="the shipped model: real-recording recall")
    left.axhline(50, color="gray", linestyle=":", linewidth=1, label="must-show: 50% of text-only")
    left.axhline(30, color="gray", linestyle="-.", linewidth=1, label="must-show: recall 0.3")
    left.set_xlabel("word error rate of what the LLM reads (held-out spoken questions, 4 voices each)")
    left.set_ylabel("% of the text-only LLM's right answers / recall x 100")
    left.set_ylim(0, 105)
    left.grid(alpha=0.3)
    left.legend(fontsize="x-small")

    right.plot(counts, heard_wers, marker="*", markersize=11, linestyle="none", color="C3",
               label="aligned projectors, varied texts (held-out heard WER)")
    grid = np.logspace(np.log10(counts[0]), 7, 60)
    right.plot(grid, intercept + slope * np.log10(grid), color="gray", linestyle="--", linewidth=1,
               label=f"log-linear fit: {intercept:.2f} {slope:+.3f} log10(utterances)")
    if wer_for_half is not None:
        right.axhline(wer_for_half, color="C0", linestyle=":",
                      label=f"WER at which the LLM answers 50% ({wer_for_half:.2f})")
    right.set_xscale("log")
    right.set_xlabel("distinct training utterances (text and steps grew together)")
    right.set_ylabel("held-out heard WER")
    right.set_ylim(0, 0.8)
    right.grid(alpha=0.3)
    right.legend(fontsize="x-small")
    figure.tight_layout()
    figure.savefig(HERE / "what_it_would_take.png", dpi=100, metadata={"Software": None})
    summary = {"bridge": bridge, "wer_for_half_of_text": wer_for_half, "real_wer_for_recall_0.3": wer_for_recall,
               "fit": f"{intercept:.3f} + {slope:.3f} * log10(utterances)", "utterances_for_wer": utterances_for,
               "shipped_relative_to_text": round(shipped_relative, 4), "shipped_real_recall": round(shipped_recall, 4)}
    (HERE / "what_it_would_take.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "bridge"}, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:])

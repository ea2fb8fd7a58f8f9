"""Plot the heard word error rate against the number of distinct training utterances (docs/results/hear).

Reads ``exp/hear/datacurve/heard.txt`` (lines written by ``heard_wer.py``: ``FOLDER {json}`` for the held-out
split and ``FOLDER dev WER`` for seen voices), fits WER = a + b * log10(utterances) on the held-out points
of the template texts and writes ``data_curve.png`` and ``data_curve.json`` beside this file. A point written
``+COUNT=NAME=LABEL`` is a run with other texts (WordNet's sentences and definitions): plotted, not fitted.

    python docs/results/hear/data_curve.py exp/hear/datacurve/heard.txt 1300=run-1300 2600=run-2600 \
        10431=ctc-align-aug "+19583=wordnet/run-3000=+ 8,000 WordNet examples, 1,164 LLM sentences (3,000 steps)" \
        "+29191=glosses/run-cont=+ 9,639 more WordNet examples and definitions (3,000 + 4,000 steps)"
"""

import json
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

lines = Path(sys.argv[1]).read_text().splitlines()
points, words = [], []
for spec in sys.argv[2:]:
    count, name, *label = spec.lstrip("+").split("=", 2)
    held = next(json.loads(line.split(" ", 1)[1]) for line in lines if name in line.split(" ")[0] and "{" in line)
    dev = next(float(line.split()[-1]) for line in lines if name in line.split(" ")[0] and " dev " in line)
    point = {"utterances": int(count), "held_out_wer": held["wer"], "by_voice": held["by_voice"], "dev_wer": dev,
             "label": label[0] if label else name}
    (words if spec.startswith("+") else points).append(point)
points.sort(key=lambda p: p["utterances"])
x = np.log10([p["utterances"] for p in points])
slope, intercept = np.polyfit(x, [p["held_out_wer"] for p in points], 1)
fit = {"wer": f"{intercept:.3f} + {slope:.3f} * log10(utterances)",
       "utterances_for_wer_0.3": round(10 ** ((0.3 - intercept) / slope)) if slope < 0 else None,
       "utterances_for_wer_0.5": round(10 ** ((0.5 - intercept) / slope)) if slope < 0 else None}
out = Path(__file__).parent
(out / "data_curve.json").write_text(json.dumps({"points": points, "fit": fit, "wordnet_points": words}, indent=2) + "\n")
figure, axis = plt.subplots(figsize=(10, 4))
counts = [p["utterances"] for p in points]
axis.plot(counts, [p["held_out_wer"] for p in points], marker="o", label="held-out voices and engines (95 items)")
axis.plot(counts, [p["dev_wer"] for p in points], marker="s", label="training voices, unseen texts (96 dev cuts)")
for source in ("espeak", "piper", "festival", "real"):
    axis.plot(counts, [p["by_voice"].get(source) for p in points], linestyle=":", marker=".", label=f"held-out: {source}")
grid = np.logspace(np.log10(counts[0]), np.log10(max(counts[-1] * 30, 3e5)), 50)
axis.plot(grid, intercept + slope * np.log10(grid), color="gray", linestyle="--", linewidth=1, label="log-linear fit (held-out)")
for color, point in zip(("C3", "C4", "C5"), words):
    axis.plot([point["utterances"]], [point["held_out_wer"]], marker="*", markersize=12, linestyle="none", color=color,
              label=f"held-out, {point['label']}")
    axis.plot([point["utterances"]], [point["dev_wer"]], marker="P", markersize=8, linestyle="none", color=color,
              label="dev, the same run")
axis.set_xscale("log")
axis.set_xlabel("distinct training utterances (align: 1,500 CTC steps of 32 unless said)")
axis.set_ylabel("word error rate of what the projector heard")
axis.set_ylim(0, 1.05)
axis.grid(alpha=0.3)
axis.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
figure.tight_layout()
figure.savefig(out / "data_curve.png", dpi=100, metadata={"Software": None})
print(json.dumps(fit))

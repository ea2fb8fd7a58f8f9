"""Heard word error rate of model folders: the held-out split, and 96 dev cuts (training voices, unseen texts).

For each compressing model folder (``model.projector_compress``), prints ``FOLDER {"wer": ..., "by_voice": ...}``
for the held-out split and ``FOLDER dev WER``, and writes what it heard beside the folder
(``FOLDER_heard.jsonl``, ``FOLDER_heard_dev.jsonl``). Run from the repository root:

    python docs/results/hear/heard_wer.py exp/hear/datacurve/run-1300/exports/step-0 ...
"""

import json
import sys

from azeros.eval.curve import held_out_tasks
from azeros.eval.heard import heard_word_error_rate
from azeros.eval.task import EvalItem
from azeros.eval.tasks._sources import manifest_recordings
from azeros.models import load_model

held_out = [item for task in held_out_tasks("exp/hear/eval-data") for item in task.items()]
dev = [EvalItem(rec.id, "dev", "dev", rec.audio, rec.utterance.transcript)
       for rec in manifest_recordings("exp/hear/corpus/cuts_dev.jsonl.gz", limit=96)]
for folder in sys.argv[1:]:
    model = load_model(folder)
    model.eval()
    rates = heard_word_error_rate(model, held_out, folder.rstrip("/") + "_heard.jsonl")
    print(folder, json.dumps(rates), flush=True)
    print(folder, "dev", heard_word_error_rate(model, dev, folder.rstrip("/") + "_heard_dev.jsonl")["wer"], flush=True)

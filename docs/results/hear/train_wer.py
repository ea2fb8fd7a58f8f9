"""Heard word error rate of compressing model folders on utterances they were trained on (docs/results/hear).

Whether a projector fits its own training texts tells underfitting from overfitting: near the held-out rate
(``heard_wer.py``), more capacity or steps is the lever, not more data. For each manifest, 150 of its cuts
(a fixed shuffle), read as ``heard_wer.py`` reads the held-out split (no augmentation). Prints
``FOLDER MANIFEST WER`` and writes what it heard beside the folder (``FOLDER_heard_train_N.jsonl``). Run from
the repository root:

    python docs/results/hear/train_wer.py models/azeros-mini exp/hear/targets/cuts_train/tsit_s_0.jsonl.gz \
        exp/hear/wordnet/targets/cuts_train/tsit_s_0.jsonl.gz
"""

import random
import sys

from azeros.eval.heard import heard_word_error_rate
from azeros.eval.task import EvalItem
from azeros.eval.tasks import manifest_recordings
from azeros.models import load_model

folder, *manifests = sys.argv[1:]
model = load_model(folder)
for number, manifest in enumerate(manifests):
    recordings = manifest_recordings(manifest)
    random.Random(0).shuffle(recordings)
    items = [EvalItem(rec.id, "train", "train", rec.audio, rec.utterance.transcript) for rec in recordings[:150]]
    rate = heard_word_error_rate(model, items, f"{folder}_heard_train_{number}.jsonl")
    print(folder, manifest, rate["wer"], flush=True)

"""Heard word error rate of model folders: the held-out split, 96 dev cuts (training voices, unseen texts) and
the held-out questions' texts spoken by training voices (which of the held-out split's errors are the texts'
and which the voices').

For each compressing model folder (``model.projector_compress``), prints ``FOLDER {"wer": ..., "by_voice": ...}``
for the held-out split, ``FOLDER dev WER`` and ``FOLDER held-out texts, training voices WER``, and writes what
it heard beside the folder (``FOLDER_heard.jsonl``, ``FOLDER_heard_dev.jsonl``, ``FOLDER_heard_texts.jsonl``).
Run from the repository root:

    python docs/results/hear/heard_wer.py exp/hear/datacurve/run-1300/exports/step-0 ...
"""

import json
import random
import sys
from pathlib import Path

from azeros.data.corpus import plan_utterance, speak_plan
from azeros.eval.curve import held_out_tasks
from azeros.eval.heard import heard_word_error_rate
from azeros.eval.task import EvalItem
from azeros.eval.tasks import manifest_recordings
from azeros.models import load_model

held_out = [item for task in held_out_tasks("exp/hear/eval-data") for item in task.items()]
dev = [EvalItem(rec.id, "dev", "dev", rec.audio, rec.utterance.transcript)
       for rec in manifest_recordings("exp/hear/corpus/cuts_dev.jsonl.gz", limit=96)]
# each held-out question once, by a training voice drawn as for a training utterance (its texts stay out of
# training: this speech is only ever evaluated)
questions = sorted({item.transcript for item in held_out if item.task == "spoken_qa"})
rng = random.Random(3)
plan = [plan_utterance(f"heldtext-{n:03d}", "train", text, rng) for n, text in enumerate(questions)]
texts = [EvalItem(cut.id, "training_voices", "training_voices", cut.recording.sources[0].source,
                  cut.supervisions[0].text)
         for cut in speak_plan(plan, Path("exp/hear/eval-data/held-out-texts"), workers=2)]
for folder in sys.argv[1:]:
    model = load_model(folder)
    model.eval()
    rates = heard_word_error_rate(model, held_out, folder.rstrip("/") + "_heard.jsonl")
    print(folder, json.dumps(rates), flush=True)
    print(folder, "dev", heard_word_error_rate(model, dev, folder.rstrip("/") + "_heard_dev.jsonl")["wer"], flush=True)
    print(folder, "held-out texts, training voices",
          heard_word_error_rate(model, texts, folder.rstrip("/") + "_heard_texts.jsonl")["wer"], flush=True)

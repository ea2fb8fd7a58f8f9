"""Heard word error rate of compressing model folders on utterances they were trained on (docs/results/hear).

Whether a projector fits its own training texts tells underfitting from overfitting: near the held-out rate
(``heard_wer.py``), more capacity or steps is the lever, not more data. For each manifest, 150 of its cuts
(a fixed shuffle), their frames read from the encoder cache (the frames training read, no augmentation),
greedy CTC as the LLM reads them. Prints ``FOLDER MANIFEST WER``. Run from the repository root:

    python docs/results/hear/train_wer.py models/azeros-mini exp/hear/encoder_cache_v2 \
        exp/hear/targets/cuts_train/tsit_s_0.jsonl.gz exp/hear/wordnet/targets/cuts_train/tsit_s_0.jsonl.gz
"""

import random
import sys

import torch
from lhotse import load_manifest_lazy

from azeros.data import Utterance
from azeros.eval.metrics import word_errors
from azeros.models import load_model
from azeros.training.cache import EncoderCache
from azeros.training.data import at_model_rate

folder, cache_dir, *manifests = sys.argv[1:]
model = load_model(folder)
cache = EncoderCache(f"{cache_dir}/semantic", model.encoders["semantic"])
projector = model.projectors["semantic"]
vocabulary = model.llm.get_input_embeddings().weight  # [V, H]
for manifest in manifests:
    cuts = list(load_manifest_lazy(manifest))
    random.Random(0).shuffle(cuts)
    edits = words = 0
    for cut in cuts[:150]:
        frames = cache.get(at_model_rate(cut))  # [t, d]
        with torch.no_grad():
            projected, counts = projector(frames[None].float(), torch.tensor([frames.shape[0]]))
        heard = model.tokenizer.decode(projector.heard(projected, counts, vocabulary)[0])
        errors, said = word_errors(Utterance.from_cut(cut).transcript, heard)
        edits, words = edits + errors, words + said
    print(folder, manifest, round(edits / words, 4), flush=True)

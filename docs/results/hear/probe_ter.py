"""``heard_ter`` of model folders on an alignment run's own probe (docs/results/hear, session 11).

Align logs the token error rate of what the projector hears on 64 fixed training utterances; this reads any
compressing model folder on the same 64 (drawn from the run's recipe and seed as align draws them), so
projectors trained before ``heard_ter`` was logged compare with the run's own records:

    python docs/results/hear/probe_ter.py exp/hear/context/run-c2/recipe.yaml models/azeros-mini ...
"""

import random
import sys

from torch import nn

from azeros.models import load_model
from azeros.training.align import PROBE_UTTERANCES, _heard_token_error_rate, alignment_examples
from azeros.training.data import manifest_cuts, usable
from azeros.training.loop import open_caches
from azeros.training.recipe import load_recipe

recipe_file, *folders = sys.argv[1:]
recipe = load_recipe(recipe_file)
first = load_model(folders[0])  # its tokenizer and encoder read the run's utterances (every folder's are the same)
cuts = (cut for m in recipe.data.train for cut in manifest_cuts(m.manifest, m.mode) if usable(cut, recipe.data))
examples = alignment_examples(first, cuts, open_caches(recipe, first)["semantic"])
probe = random.Random(recipe.seed).sample(examples, min(PROBE_UTTERANCES, len(examples)))
vocab = sorted({i for example in examples for i in example.token_ids})
for folder in folders:
    model = first if folder == folders[0] else load_model(folder)
    targets = nn.functional.normalize(model.llm.get_input_embeddings().weight.detach().float()[vocab], dim=-1)
    projector = model.projectors["semantic"].eval()
    rate = _heard_token_error_rate(projector, projector.blank, targets, vocab, probe, recipe.align.scale)
    print(folder, rate, flush=True)

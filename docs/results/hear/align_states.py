"""Model folders from an alignment's saved states (docs/results/hear, session 11: held-out WER against align steps).

Copy ``OUTPUT_DIR/checkpoints/align/state.pt`` aside as the alignment writes it (every ``align.save_every``
steps), then load each copy's projector into the recipe's model and save it as ``OUT/step-N``:

    python docs/results/hear/align_states.py docs/results/hear/align_context.yaml exp/hear/context/steps STATE.pt...
    python docs/results/hear/heard_wer.py exp/hear/context/steps/step-1000 exp/hear/context/steps/step-2000
"""

import sys
from pathlib import Path

import torch

from azeros.models import save_model
from azeros.training.loop import build_model
from azeros.training.recipe import load_recipe

recipe_file, out, *states = sys.argv[1:]
recipe = load_recipe(recipe_file)
model = build_model(recipe.model, seed=recipe.seed, verbose=False)
for path in states:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model.projectors["semantic"].load_state_dict(saved["projector"])
    print(save_model(model, Path(out) / f"step-{saved['step']}"), flush=True)

"""A run's output folder: which run it holds, and whether a start may use it.

``{output_dir}/recipe.yaml`` is the resolved recipe (every value typed, overrides applied) of the run the
folder holds, written when the run starts. A fresh start refuses a folder that holds a run (its recipe,
checkpoints, exports or final model) unless told to overwrite it: old checkpoints with higher step
numbers would outlive pruning and a later resume would continue the old run. A resume refuses a recipe
that changed since the run started, unless forced, except for :data:`RESUMABLE_CHANGES`: the length of
the run and what only watches it (logging, validation, checkpoint and export cadence, the device).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from azeros.config import describe_changes
from azeros.errors import ConfigError, RunFolderError
from azeros.training.checkpoint import latest_checkpoint
from azeros.training.recipe import TrainRecipe

__all__ = ["RECIPE_FILE", "RESUMABLE_CHANGES", "check_run_folder", "start_run_folder"]

logger = logging.getLogger(__name__)

RECIPE_FILE = "recipe.yaml"

# Settings a resumed run may change without --force-resume: none of them changes what a step computes
# (run.max_steps moves the end of the cosine schedule: that is what extending a run means).
RESUMABLE_CHANGES = frozenset({
    "run.max_steps", "run.device", "run.progress", "run.log_every", "run.valid_every", "run.save_every",
    "run.keep_checkpoints", "run.export_every", "data.valid", "data.valid_max_cuts", "align.save_every",
})

# What a run writes into its folder (the encoder cache is kept: it is checked against the encoders on use).
_RUN_OUTPUTS = (RECIPE_FILE, "checkpoints", "exports", "final", "log.jsonl", "tensorboard", "curves.png")


def _saved_recipe(out: Path) -> dict[str, Any] | None:
    path = out / RECIPE_FILE
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def check_run_folder(recipe: TrainRecipe, resume: bool | str = False, overwrite: bool = False,
                     force_resume: bool = False) -> None:
    """Refuse a start that would mix two runs in one folder; reads only (every process may call it).

    Args:
        recipe: the recipe about to run.
        resume: continuing the run in ``output_dir`` (``True`` or a checkpoint folder).
        overwrite: a fresh start may replace the run the folder holds.
        force_resume: a resume may continue under a recipe changed beyond :data:`RESUMABLE_CHANGES`.

    Raises:
        ConfigError: when both ``resume`` and ``overwrite`` are given.
        RunFolderError: a fresh start in a folder holding a run, or a resume under a changed recipe.
    """
    if resume and overwrite:
        raise ConfigError("--resume continues the run in output_dir and --overwrite replaces it: give one")
    out = Path(recipe.output_dir)
    saved = _saved_recipe(out)
    changes = recipe.changes_from(saved) if saved is not None else {}
    if resume:
        changed = {key: values for key, values in changes.items() if key not in RESUMABLE_CHANGES}
        if saved is None:
            logger.warning("%s has no %s (a run of an older azeros): the recipe cannot be checked", out, RECIPE_FILE)
        elif changed and not force_resume:
            raise RunFolderError(
                f"--resume: the recipe changed since the run in {out} started: {describe_changes(changed)}; only "
                f"{', '.join(sorted(RESUMABLE_CHANGES))} may change; --force-resume continues anyway"
            )
        elif changed:
            logger.warning("resuming under a changed recipe (forced): %s", describe_changes(changed))
        return
    held = [name for name in _RUN_OUTPUTS if (out / name).exists()]
    if held and not overwrite:
        checkpoint = latest_checkpoint(out / "checkpoints")
        at = f" (checkpoint at step {checkpoint.step})" if checkpoint else ""
        if saved is not None and changes:
            what = f"another run{at}, whose recipe differs in {describe_changes(changes)}: set another output_dir, or"
        else:
            what = f"a run of this recipe{at}: --resume continues it, or"
        raise RunFolderError(f"{out} holds {what} --overwrite replaces it (found {', '.join(held)})")


def start_run_folder(recipe: TrainRecipe, overwrite: bool = False) -> Path:
    """Claim ``output_dir`` for the run (on one process only): clear an old run when overwriting, save the recipe.

    Returns:
        The saved recipe file.
    """
    out = Path(recipe.output_dir)
    if overwrite:
        for name in _RUN_OUTPUTS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    path = out / RECIPE_FILE
    path.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    return path

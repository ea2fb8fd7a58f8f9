"""Training the projectors: recipes, the loop, schedules, averaging, checkpoints, the encoder cache."""

from azeros.training.averaging import ProjectorAverage
from azeros.training.cache import EncoderCache
from azeros.training.checkpoint import Checkpoint, latest_checkpoint
from azeros.training.data import make_batch, training_cuts, training_sampler
from azeros.training.logs import TrainLog, plot_curves
from azeros.training.loop import build_model, evaluate, fill_cache, model_folder, train, trained_model
from azeros.training.recipe import TrainRecipe, load_recipe
from azeros.training.schedule import lr_at

__all__ = [
    "Checkpoint",
    "EncoderCache",
    "ProjectorAverage",
    "TrainLog",
    "TrainRecipe",
    "build_model",
    "evaluate",
    "fill_cache",
    "latest_checkpoint",
    "load_recipe",
    "lr_at",
    "make_batch",
    "model_folder",
    "plot_curves",
    "train",
    "training_cuts",
    "trained_model",
    "training_sampler",
]

"""Fixtures of the training tests: a saved tiny LLM, espeak-ng manifests, and recipes over them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.training.speech import write_manifest


@pytest.fixture(scope="session")
def manifests(tmp_path_factory) -> dict[str, Path]:
    """Generated manifests: 16 SIFT_s training utterances, 4 held out, 8 SIFT_sp."""
    root = tmp_path_factory.mktemp("speech")
    return {
        "train": write_manifest(root / "sift_s_train.jsonl.gz", root / "wavs", range(16)),
        "valid": write_manifest(root / "sift_s_valid.jsonl.gz", root / "wavs", range(16, 20)),
        "sp": write_manifest(root / "sift_sp_train.jsonl.gz", root / "wavs", range(8), mode="sift_sp"),
    }


def tiny_recipe(out: Path, model_section: dict, manifests: dict[str, Path], **sections) -> dict:
    """A recipe (as a dict) for the tiny model on the fixture manifests; ``sections`` update its sections."""
    recipe = {
        "output_dir": str(out),
        "seed": 0,
        "model": dict(model_section),
        "data": {"train": [{"manifest": str(manifests["train"])}], "valid": [str(manifests["valid"])],
                 "max_duration": 12.0, "max_cuts": 4, "num_buckets": 2, "buffer_size": 64},
        "optim": {"lr": 3e-3, "warmup_steps": 2, "schedule": "cosine"},
        "run": {"max_steps": 6, "device": "cpu", "precision": "fp32", "log_every": 1, "valid_every": 0,
                "save_every": 3, "progress": False},
    }
    for name, values in sections.items():
        recipe[name] = {**recipe.get(name, {}), **values} if isinstance(values, dict) else values
    return recipe


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe))
    return path

"""The pipeline recipe is typed like a training recipe: overrides take the fields' types, unknown keys and
fields the pipeline fills are refused, every pipeline recipe in recipes/ loads, and the resolved recipe is
saved in the run folder before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import azeros.pipeline
from azeros.cli import main
from azeros.config import load_config
from azeros.errors import ConfigError
from azeros.pipeline import PipelineRecipe, SplitLimits, load_pipeline_recipe
from azeros.training import load_recipe
from azeros.training.recipe import TrainManifest

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "recipes" / "mini.yaml"
PIPELINE_RECIPES = [p for p in sorted((REPO / "recipes").glob("*.yaml")) if p.read_text().startswith("# azeros pipeline")]


@pytest.mark.parametrize("path", PIPELINE_RECIPES, ids=lambda p: p.name)
def test_every_pipeline_recipe_loads_and_names_its_command(path):
    assert path.read_text().splitlines()[0].startswith(f"# azeros pipeline recipes/{path.name}")
    recipe = load_pipeline_recipe(path)
    assert recipe.stage1_targets and recipe.stage1.model.train_roles and recipe.stage2.model.train_roles


def test_there_is_a_pipeline_recipe():
    assert MINI in PIPELINE_RECIPES


def test_overrides_take_the_fields_types():
    recipe = load_pipeline_recipe(MINI, ["corpus.num_utterances=60", "stage1.optim.lr=3e-4", "export_to=null",
                                         "stage1_targets.sift_s.limit.train=6", "generate.limit={train: 5}"])
    assert recipe.corpus.num_utterances == 60 and type(recipe.corpus.num_utterances) is int
    assert recipe.stage1.optim.lr == 3e-4 and type(recipe.stage1.optim.lr) is float  # YAML reads 3e-4 as text
    assert recipe.stage1_targets["sift_s"].limit == SplitLimits(train=6, dev=96)
    assert recipe.stage1_targets["tsit_s"].max_new_tokens is None and recipe.stage1_targets["sift_s"].weight == 6.0
    assert recipe.generate.limit == SplitLimits(train=5, dev=None) and recipe.export_to is None


@pytest.mark.parametrize(("override", "message"), [
    ("corpus.num_utterances=sixty", "mini.yaml: corpus.num_utterances='sixty': expected int"),
    ("corpus.num=60", "mini.yaml: corpus: unknown keys ['num']; known: ['common_tokens', 'num_utterances', 'seed', 'sentences', 'workers']"),
    ("generate.limit.test=5", "mini.yaml: generate.limit: unknown keys ['test']; known: ['dev', 'train']"),
    ("stage1.run.max_steps=ten", "mini.yaml: stage1.run.max_steps='ten': expected int"),
    ("stage1_targets.sift_s.weight=heavy", "mini.yaml: stage1_targets.sift_s.weight='heavy': expected float"),
    ("generate.sp_candidates=[sift_spp]", "mini.yaml: generate.sp_candidates: unknown mode 'sift_spp'"),
    ("stage1.data.train=[a.jsonl.gz]", "mini.yaml: stage1.data.train: set by the pipeline itself, leave out"),
    ("stage2.model.init_from=exp/x", "mini.yaml: stage2.model.init_from: set by the pipeline itself, leave out"),
    ("export_force=perhaps", "mini.yaml: export_force='perhaps': expected bool"),
])
def test_a_bad_value_or_key_is_one_error_naming_it(override, message):
    with pytest.raises(ConfigError) as error:
        load_pipeline_recipe(MINI, [override])
    assert str(error.value).startswith(message)


def test_the_command_says_a_bad_override_in_one_line(capsys, tmp_path):
    assert main(["pipeline", str(MINI), f"output_dir={tmp_path}", "corpus.num_utterances=sixty"]) == 2
    assert capsys.readouterr().err == "azeros pipeline: error: mini.yaml: corpus.num_utterances='sixty': expected int\n"


class Stop(Exception):
    """Raised where the pipeline would start building its corpus: nothing has run yet."""


@pytest.fixture
def stop_at_corpus(monkeypatch):
    def no_corpus(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(azeros.pipeline, "build_synthetic_corpus", no_corpus)


def test_the_resolved_recipe_is_saved_before_anything_runs(tmp_path, stop_at_corpus):
    overrides = [f"output_dir={tmp_path}", "corpus.num_utterances=60", "stage2.run.max_steps=7"]
    with pytest.raises(Stop):
        azeros.pipeline.run_pipeline(MINI, overrides)
    saved = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    assert saved["corpus"]["num_utterances"] == 60 and saved["generate"]["repetition_penalty"] is None  # defaults too
    assert load_config(PipelineRecipe, saved) == load_pipeline_recipe(MINI, overrides)


def test_a_rerun_with_other_settings_is_refused_before_anything_runs(tmp_path, stop_at_corpus):
    # A rerun skips every stage whose output is complete: with other settings it reused the old corpus,
    # targets and models while pipeline.yaml said the new settings had made them.
    first = [f"output_dir={tmp_path}", "corpus.num_utterances=60"]
    with pytest.raises(Stop):
        azeros.pipeline.run_pipeline(MINI, first)
    saved = (tmp_path / "pipeline.yaml").read_text()
    with pytest.raises(ConfigError, match=r"corpus.num_utterances \(60 -> 80\).*another output_dir"):
        azeros.pipeline.run_pipeline(MINI, [*first[:1], "corpus.num_utterances=80"])
    assert (tmp_path / "pipeline.yaml").read_text() == saved  # the record of what the folder holds stays
    with pytest.raises(Stop):  # where the model is copied to changes nothing the stages made
        azeros.pipeline.run_pipeline(MINI, [*first, f"export_to={tmp_path / 'model'}"])


def test_a_stage_recipe_is_written_as_a_training_recipe_that_loads(tmp_path):
    recipe = load_pipeline_recipe(MINI, ["stage1.run.max_steps=9"])
    manifests = [TrainManifest(str(tmp_path / "t.jsonl.gz"), 6.0)]
    path = azeros.pipeline._stage_recipe(tmp_path, "stage1", recipe.stage1, manifests, [str(tmp_path / "d.jsonl.gz")])
    assert path.read_text().startswith("# written by azeros pipeline; rerun with: azeros train")
    stage = load_recipe(path)
    assert stage.output_dir == str(tmp_path / "stage1") and stage.data.train == manifests
    assert stage.run.max_steps == 9 and stage.align == recipe.stage1.align and stage.model == recipe.stage1.model

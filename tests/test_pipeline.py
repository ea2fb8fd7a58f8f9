"""A CI-sized run of the whole pipeline on the real small weights: synthesize -> self-elicit check ->
targets -> stage 1 -> stage 2 -> answer (the demo's part (b), smaller)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from azeros.data import Utterance, read_cuts, target_of
from azeros.inference import GenerationParams, generate, load_model
from azeros.errors import ConfigError
from azeros.pipeline import ablation_models, answer_modes, load_pipeline_recipe, run_pipeline
from azeros.selfgen.check import declines

pytestmark = pytest.mark.real_weights


def test_the_pipeline_builds_a_model_that_answers(tmp_path):
    out = tmp_path / "run"
    steps = ["run.max_steps=3", "run.valid_every=0", "run.save_every=0", "run.progress=false",
             "optim.warmup_steps=1", "data.max_cuts=4"]
    overrides = [
        f"output_dir={out}", f"export_to={tmp_path / 'model'}", "corpus.num_utterances=24", "corpus.sentences=4",
        "generate.check_sample=3", "generate.max_new_tokens=16", "generate.limit.train=6", "generate.limit.dev=2",
        "stage1_targets.sift_s.limit.train=6", "stage1_targets.sift_s.limit.dev=2", "stage1_targets.tsit_s.limit.dev=2",
        "stage1.run.export_every=0", "stage1.align.steps=10",
        *(f"{stage}.{s}" for stage in ("stage1", "stage2") for s in steps),
    ]
    final = run_pipeline("recipes/mini.yaml", overrides)
    with pytest.raises(FileExistsError, match="export_force"):  # never overwrites what the user did not ask to
        run_pipeline("recipes/mini.yaml", overrides)

    sp_modes = json.loads((final / "pipeline.json").read_text())["sp_modes"]
    assert sp_modes in (["sift_sp"], ["sit_sp"], ["sift_sp", "sit_sp"])
    assert "picked:" in (final / "self_elicit_check.txt").read_text()
    picked = sp_modes[-1]
    targets = list(read_cuts(out / "targets" / "train" / f"{picked}_0.jsonl.gz"))
    assert len(targets) == 6 and all(target_of(c).mode == picked for c in targets)
    summary = json.loads((out / "targets" / "train" / f"{picked}_0.summary.json").read_text())
    assert summary["inputs"] == summary["done"] + summary["rejected"]
    # WordNet sentences join stage 1 only, as transcripts (TSIT_s), and are heard by training voices
    sentences = list(read_cuts(out / "targets" / "sentences" / "tsit_s_0.jsonl.gz"))
    assert len(sentences) == 4 and all(target_of(c).mode == "tsit_s" for c in sentences)
    assert "targets/sentences/tsit_s_0.jsonl.gz" in (final / "stage1.yaml").read_text()
    assert "sentences" not in (final / "stage2.yaml").read_text()
    # stage 2 (as recipes/mini.yaml says): SIFT_s and the sp mode(s) without their declining targets, plus TSIT_s
    stage2_train = yaml.safe_load((final / "stage2.yaml").read_text())["data"]["train"]
    manifests = {Path(entry["manifest"]).name: (Path(entry["manifest"]).parent.name, entry["weight"])
                 for entry in stage2_train}
    assert manifests == {"sift_s_0.jsonl.gz": ("stage2_kept", 1.0), "tsit_s_0.jsonl.gz": ("train", 0.03),
                         **{f"{mode}_0.jsonl.gz": ("stage2_kept", 1.0) for mode in sp_modes}}
    for mode in ["sift_s", *sp_modes]:
        every = [target_of(c).response for c in read_cuts(out / "targets" / "train" / f"{mode}_0.jsonl.gz")]
        kept = [target_of(c).response for c in read_cuts(out / "stage2_kept" / f"{mode}_0.jsonl.gz")]
        assert kept == [response for response in every if not declines(response)]
    for stage in ("stage1", "stage2"):
        assert (final / f"{stage}_curves.png").stat().st_size > 0
        assert (final / f"{stage}.yaml").read_text().startswith("# written by azeros pipeline")
    model = load_model(final)
    assert model.roles == ("semantic", "paralinguistic")
    # it answers in the context its instruction-free stage-2 targets were written in
    assert model.chat_mode.name == ("sift_sp" if "sift_sp" in sp_modes else "sift_s")
    wave = next(iter(read_cuts(out / "corpus" / "cuts_test.jsonl.gz"))).load_audio()[0]
    (answer,) = generate(model, [(wave, 16000)], params=GenerationParams(max_new_tokens=8))
    assert answer.token_ids

    # the comparison's models: the finished pipeline is reused; TSIT_s and SIT_s stage 1 on the same cuts
    models = ablation_models("recipes/mini.yaml", overrides)
    names = {"sift_sp": "SIFT_sp", "sit_sp": "SIT_sp"}
    assert list(models) == ["TSIT_s", "SIT_s", "SIFT_s", "SIFT_s+TSIT_s",
                            "+".join(["SIFT_s+TSIT_s", *(names[m] for m in sp_modes)])]
    sift_ids = sorted(c.id for c in read_cuts(out / "targets" / "train" / "sift_s_0.jsonl.gz"))
    # stage 1's TSIT_s half has every training cut; the ablations exactly SIFT_s's
    assert len(list(read_cuts(out / "targets" / "train" / "tsit_s_0.jsonl.gz"))) > len(sift_ids)
    for mode in ("tsit_s", "sit_s"):
        cuts = list(read_cuts(out / "ablation_targets" / "train" / f"{mode}_0.jsonl.gz"))
        assert sorted(c.id for c in cuts) == sift_ids  # the same utterances as SIFT_s, each once
        assert all(target_of(c).mode == mode for c in cuts)
    tsit = read_cuts(out / "ablation_targets" / "train" / "tsit_s_0.jsonl.gz")
    assert all(target_of(c).response == Utterance.from_cut(c).transcript for c in tsit)  # the transcript itself
    for name, folder in models.items():
        assert load_model(folder).roles[0] == "semantic", name
    assert (out / "ablation_sit_s.yaml").read_text().startswith("# written by azeros pipeline")


@pytest.mark.parametrize(("override", "refused"), [
    ("stage2_targets.sift_s.weight=2.0", "stage2_targets.sift_s: stage 2 trains on SIFT_s"),
    ("stage2_targets.sit_sp.weight=2.0", "stage2_targets.sit_sp: stage 2 trains on SIFT_s"),
    ("stage2_targets.tsit_s.max_new_tokens=8", "stage2_targets.tsit_s: stage 1 writes this mode's targets"),
    ("stage2_targets.nope.weight=1.0", "stage2_targets: unknown mode"),
])
def test_stage2_targets_that_would_clash_with_the_targets_stage_2_has_are_refused(override, refused):
    with pytest.raises(ConfigError, match=refused):
        load_pipeline_recipe("recipes/mini.yaml", [override])


def test_a_sit_trained_model_answers_in_the_sift_s_context():
    assert answer_modes(["sift_ssp"]) == {"chat_mode": "sift_ssp"}
    assert answer_modes(["sift_sp", "sit_sp"]) == {"chat_mode": "sift_sp"}
    assert answer_modes(["sit_sp"]) == {"chat_mode": "sift_s"}

"""The whole AZEROS pipeline from one YAML file: corpus -> self-elicit check -> targets -> stage 1 -> stage 2.

``azeros pipeline recipes/mini.yaml`` retrains the embedded default from scratch; the demo runs the same
function on a small slice (``key=value`` overrides). Each stage writes its own folder under
``output_dir`` and is skipped when its output is already complete, so a rerun continues where it stopped:

* ``corpus/``: labelled synthetic speech (:func:`azeros.data.corpus.build_synthetic_corpus`);
* ``check/``: targets of the candidate sp modes on a sample, and which the check picks (paper §5.7: per
  piece of oracle information, the mode whose targets carry it more often; SIFT, SIT, or both when each
  wins some pieces);
* ``targets/``: stage 1's modes (``stage1_targets``: SIFT_s, and TSIT_s in the shipped recipe, each with
  its own number of cuts, answer length and mix weight) and the picked sp mode(s), for train and dev;
* ``stage1/``: the semantic projector on stage 1's mix (its recipe is written as ``stage1.yaml``);
* ``stage2/``: the paralinguistic projector on SIFT_s + the sp mode(s), the semantic one loaded and frozen.

A run writes under ``output_dir`` only. With ``export_to`` set, the final model, its training logs and plots,
and the check's report are copied there; an existing non-empty folder is refused unless ``export_force``.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lhotse import CutSet

from azeros.data import DatasetSpec, read_cuts
from azeros.data.corpus import build_synthetic_corpus
from azeros.selfgen import GenerateConfig, build_backend, elicit_report, output_paths, run_generation
from azeros.text import get_mode
from azeros.errors import ConfigError
from azeros.training import load_recipe, trained_model
from azeros.training.recipe import apply_override, parse_recipe

__all__ = ["ablation_models", "answer_modes", "run_pipeline"]

logger = logging.getLogger(__name__)

_SPLITS = ("train", "dev")


def _say(message: str) -> None:
    logger.info("\n== %s", message)


def _manifest(out: Path, split: str, mode: str) -> str:
    return str(output_paths(out / "targets", split, mode, 0)[0])


def answer_modes(sp_modes: list[str]) -> dict[str, str]:
    """The final model's inference context: the system message its instruction-free targets were written under.

    With a SIFT sp mode among the picked that is its (the ssp system message for ``sift_ssp``); with SIT
    alone the only instruction-free targets are SIFT_s's. The audio layout is the model's own in every case.
    """
    sift = [mode for mode in sp_modes if get_mode(mode).instruction is None]
    return {"chat_mode": sift[0] if sift else "sift_s"}


def _stage_recipe(out: Path, name: str, tree: dict[str, Any], train: list[dict[str, Any]], valid: list[str]) -> Path:
    stage = copy.deepcopy(tree)
    stage["output_dir"] = str(out / name)
    stage.setdefault("data", {})
    stage["data"]["train"] = train
    stage["data"]["valid"] = valid
    path = out / f"{name}.yaml"
    header = f"# written by azeros pipeline; rerun with: azeros train {path}\n"
    path.write_text(header + yaml.safe_dump(stage, sort_keys=False))
    return path


_STAGES = ("stage1", "stage2")


def _load_tree(recipe: str | Path, overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The pipeline tree with overrides applied; its stage sections typed now, not after hours of generation."""
    path = Path(recipe)
    if not path.is_file():
        raise FileNotFoundError(f"pipeline recipe {path} not found")
    tree = yaml.safe_load(path.read_text()) or {}
    for assignment in overrides:
        apply_override(tree, assignment)
    for stage in _STAGES:
        section = tree.get(stage) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{path.name}: {stage}={section!r}: expected a mapping (a training recipe)")
        try:  # a stage section is a training recipe but for what the pipeline fills in
            typed = parse_recipe({**section, "output_dir": stage}).to_dict()
        except ConfigError as error:
            raise ConfigError(f"{path.name}: {stage}: {error}") from None
        tree[stage] = {key: typed[key] for key in section}
    return tree


# Stage 1's targets when a recipe names none: SIFT_s alone, as many cuts and as long as the sp targets.
_DEFAULT_STAGE1_TARGETS = {"sift_s": {}}


def _backend(tree: dict[str, Any], max_new_tokens: int | None = None) -> Any:
    gen = tree["generate"]
    return build_backend("transformers", gen["model"], max_new_tokens=max_new_tokens or gen["max_new_tokens"],
                         max_batch=gen["batch_size"], repetition_penalty=gen.get("repetition_penalty"))


def _targets(out: Path, datasets: dict[str, DatasetSpec], modes: list[str], backend: Any,
             limits: dict[str, int | None], folder: str = "targets") -> None:
    for split, spec in datasets.items():  # a per-split limit keeps CPU runs short (None: every cut)
        run_generation(GenerateConfig(datasets=[spec], out_dir=out / folder, modes=modes, limit=limits.get(split)),
                       backend)


def _stage1_targets(out: Path, tree: dict[str, Any], datasets: dict[str, DatasetSpec]) -> dict[str, float]:
    """Generate stage 1's target modes, each with its own limits and answer length; returns mode -> mix weight."""
    weights = {}
    for mode, options in (tree.get("stage1_targets") or _DEFAULT_STAGE1_TARGETS).items():
        options = options or {}
        limits = options.get("limit", tree["generate"].get("limit", {}))
        backend = _backend(tree, options.get("max_new_tokens")) if get_mode(mode).self_generated else None
        _targets(out, datasets, [mode], backend, limits)
        weights[mode] = float(options.get("weight", 1.0))
    return weights


def _mode_names(modes: list[str]) -> list[str]:
    """``["sift_s", "tsit_s"]`` -> ``["SIFT_s", "TSIT_s"]`` (the paper's spelling)."""
    return [f"{kind.upper()}_{information}" for kind, information in (m.split("_") for m in modes)]


@dataclass
class _Stages:
    """What a pipeline run leaves under its output folder."""

    out: Path
    datasets: dict[str, DatasetSpec]
    sp_modes: list[str]
    stage1_modes: list[str]
    stage1: Path
    stage2: Path


def _run_stages(tree: dict[str, Any]) -> _Stages:
    """Run (or continue) corpus, check, targets, stage 1 and stage 2 of a loaded pipeline recipe."""
    out = Path(tree["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    gen = tree["generate"]

    _say("1/5 corpus: synthetic voices with known labels")
    corpus = build_synthetic_corpus(out / "corpus", **tree["corpus"])
    datasets = {split: DatasetSpec(split, corpus[split], "en") for split in _SPLITS}
    backend = _backend(tree)

    _say("2/5 self-elicit check: does the LLM volunteer the speaker labels without an instruction?")
    candidates = gen.get("sp_candidates", ["sift_sp", "sit_sp"])
    check = GenerateConfig(datasets=[datasets["train"]], out_dir=out / "check", modes=candidates,
                           limit=gen["check_sample"])
    run_generation(check, backend)
    report = elicit_report(read_cuts([output_paths(out / "check", "train", m, 0)[0] for m in candidates]))
    pick = report.pick(next((m for m in candidates if m.startswith("sift_")), "sift_sp"))
    summary = f"{report.table()}\n\n{pick.reason}\n"
    (out / "check" / "report.txt").write_text(summary)
    logger.info("%s", summary)
    sp_modes = pick.modes

    _say(f"3/5 targets: {' + '.join(sp_modes)} and stage 1's for {', '.join(_SPLITS)}")
    _targets(out, datasets, sp_modes, backend, gen.get("limit", {}))
    del backend  # frees the generation copy of the LLM before training loads its own
    stage1_weights = _stage1_targets(out, tree, datasets)
    modes = ["sift_s", *sp_modes]
    if "sift_s" not in stage1_weights:
        _targets(out, datasets, ["sift_s"], _backend(tree), gen.get("limit", {}))

    _say(f"4/5 stage 1: the semantic projector on {' + '.join(_mode_names(list(stage1_weights)))}")
    stage1 = _stage_recipe(
        out, "stage1", tree["stage1"],
        [{"manifest": _manifest(out, "train", mode), "weight": weight} for mode, weight in stage1_weights.items()],
        [_manifest(out, "dev", mode) for mode in stage1_weights],
    )
    stage1_model = _train_once(stage1)

    _say(f"5/5 stage 2: the paralinguistic projector on SIFT_s + {' + '.join(sp_modes)}, stage 1 frozen")
    stage2_tree = copy.deepcopy(tree["stage2"])
    stage2_tree.setdefault("model", {}).update(init_from=str(stage1_model), **answer_modes(sp_modes))
    stage2 = _stage_recipe(
        out, "stage2", stage2_tree,
        [{"manifest": _manifest(out, "train", mode)} for mode in modes],
        [_manifest(out, "dev", mode) for mode in modes],
    )
    return _Stages(out, datasets, sp_modes, list(stage1_weights), stage1_model, _train_once(stage2))


def run_pipeline(recipe: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """Run (or continue) every stage of a pipeline recipe.

    Args:
        recipe: the pipeline YAML (see ``recipes/mini.yaml``).
        overrides: dotted ``key=value`` assignments, e.g. ``corpus.num_utterances=60 stage1.run.max_steps=20``.

    Returns:
        The exported model folder.
    """
    tree = _load_tree(recipe, overrides)
    built = _run_stages(tree)
    export_to = Path(tree["export_to"]) if tree.get("export_to") else None
    return _export(built.out, built.stage2, export_to, built.sp_modes, bool(tree.get("export_force")))


def ablation_models(recipe: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Path]:
    """The models of the paper's comparisons (Tables 3-5), trained on one data budget.

    Runs (or continues) the pipeline without exporting, then trains the stage-1 ablations: the semantic
    projector on TSIT_s (transcripts behind an ASR instruction), on SIT_s (the LLM's answers to "Repeat
    the above content.") and on SIFT_s alone, each on the cuts of the pipeline's SIFT_s targets, with the
    same stage-1 recipe and steps. Their targets go to ``ablation_targets/``, apart from the pipeline's.

    Returns:
        ``{"TSIT_s": ..., "SIT_s": ..., "SIFT_s": ..., "<stage 1 modes>": ..., "<stage 1>+<sp mode(s)>": ...}``,
        model folders (the pipeline's own stage 1 is listed apart when it is not SIFT_s alone).
    """
    tree = _load_tree(recipe, overrides)
    built = _run_stages(tree)
    out = built.out

    _say("ablations: TSIT_s and SIT_s targets for the SIFT_s cuts, then stage 1 on each (and on SIFT_s alone)")
    ablation = out / "ablation_targets"
    ablation.mkdir(parents=True, exist_ok=True)
    sift_cuts = {}
    for split, spec in built.datasets.items():  # exactly the cuts of the pipeline's SIFT_s targets
        ids = {cut.id for cut in read_cuts(_manifest(out, split, "sift_s"))}
        path = ablation / f"cuts_{split}.jsonl.gz"
        CutSet.from_cuts(cut for cut in read_cuts(spec.manifest) if cut.id in ids).to_file(path)
        sift_cuts[split] = DatasetSpec(split, str(path), "en")
    _targets(out, sift_cuts, ["tsit_s"], None, {}, folder="ablation_targets")  # the transcript itself: no LLM
    _targets(out, sift_cuts, ["sit_s"], _backend(tree), {}, folder="ablation_targets")
    models = {}
    for mode, name in (("tsit_s", "TSIT_s"), ("sit_s", "SIT_s"), ("sift_s", "SIFT_s")):
        if mode == "sift_s" and built.stage1_modes == ["sift_s"]:
            models[name] = built.stage1
            continue
        root = out / "targets" if mode == "sift_s" else ablation
        train, valid = (str(output_paths(root, split, mode, 0)[0]) for split in _SPLITS)
        models[name] = _train_once(_stage_recipe(out, f"ablation_{mode}", tree["stage1"], [{"manifest": train}], [valid]))
    stage1_name = "+".join(_mode_names(built.stage1_modes))
    models[stage1_name] = built.stage1
    models["+".join([stage1_name, *_mode_names(built.sp_modes)])] = built.stage2
    return models


def _train_once(recipe_path: Path) -> Path:
    return trained_model(load_recipe(recipe_path))


def _export(out: Path, final: Path, export_to: Path | None, sp_modes: list[str], force: bool = False) -> Path:
    if export_to is None:
        return final
    if export_to.exists() and any(export_to.iterdir()) and not force:
        raise FileExistsError(f"{export_to} exists and is not empty: export elsewhere, or set export_force=true "
                              "to replace what is there")
    export_to.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(final / name, export_to / name)
    for stage in _STAGES:
        for source, target in (("log.jsonl", f"{stage}_log.jsonl"), ("curves.png", f"{stage}_curves.png")):
            if (out / stage / source).is_file():
                shutil.copy2(out / stage / source, export_to / target)
        shutil.copy2(out / f"{stage}.yaml", export_to / f"{stage}.yaml")
    shutil.copy2(out / "check" / "report.txt", export_to / "self_elicit_check.txt")
    (export_to / "pipeline.json").write_text(json.dumps({"sp_modes": sp_modes}, indent=2) + "\n")
    return export_to

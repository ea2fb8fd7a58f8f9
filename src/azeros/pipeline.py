"""The whole AZEROS pipeline from one YAML file: corpus -> self-elicit check -> targets -> stage 1 -> stage 2.

``azeros pipeline recipes/mini.yaml`` retrains the embedded default from scratch; the demo runs the same
function on a small slice (``key=value`` overrides). Each stage writes its own folder under
``output_dir`` and is skipped when its output is already complete, so a rerun continues where it stopped:

* ``corpus/``: labelled synthetic speech (:func:`azeros.data.corpus.build_synthetic_corpus`), and with
  ``corpus.sentences`` ``sentences/``: WordNet's example sentences by the training voices (:func:`sentence_corpus`),
  training texts over a broad vocabulary whose TSIT_s targets join stage 1's mix;
* ``check/``: targets of the candidate sp modes on a sample, and which the check picks (paper §5.7: per
  piece of oracle information, the mode whose targets carry it more often; SIFT, SIT, or both when each
  wins some pieces);
* ``targets/``: stage 1's modes (``stage1_targets``: SIFT_s, and TSIT_s in the shipped recipe, each with
  its own number of cuts, answer length and mix weight) and the picked sp mode(s), for train and dev;
* ``stage1/``: the semantic projector on stage 1's mix (its recipe is written as ``stage1.yaml``);
* ``stage2/``: the paralinguistic projector on SIFT_s + the sp mode(s) (+ ``stage2_targets``' modes, e.g. TSIT_s),
  the semantic one loaded and frozen; with ``generate.drop_declines`` on the targets in which the LLM did not
  decline (copies in ``stage2_kept/``).

The recipe is typed (:class:`PipelineRecipe`, read by :mod:`azeros.config` like a training recipe): unknown
keys are refused and every value, overrides included (``corpus.num_utterances=60``), is checked against its
field's type before anything runs; the resolved recipe is saved as ``{output_dir}/pipeline.yaml``, and a
rerun whose settings differ from it (beyond :data:`RERUN_CHANGES`) is refused: its stages would be skipped
and the old outputs kept under the new settings' name.
A run writes under ``output_dir`` only. With ``export_to`` set, the final model, its training logs and plots,
and the check's report are copied there; an existing non-empty folder is refused unless ``export_force``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from lhotse import CutSet

from azeros.config import config_tree, describe_changes, load_config, read_tree, tree_changes
from azeros.data import DatasetSpec, read_cuts
from azeros.data.corpus import build_sentence_corpus, build_synthetic_corpus
from azeros.data.wordnet import wordnet_sentences
from azeros.errors import ConfigError
from azeros.eval import EvalConfig, EvalOutcome, evaluate
from azeros.llm.loading import load_tokenizer
from azeros.selfgen import (
    GenerateConfig,
    build_backend,
    elicit_report,
    output_paths,
    run_generation,
    write_without_declines,
)
from azeros.text import get_mode
from azeros.training import TrainRecipe, load_recipe, model_folder, trained_model
from azeros.training.recipe import TrainManifest

__all__ = [
    "CorpusSection",
    "GenerateSection",
    "PipelineRecipe",
    "RERUN_CHANGES",
    "SplitLimits",
    "StageRecipe",
    "StageTargets",
    "ablation_models",
    "answer_modes",
    "common_sentences",
    "compare",
    "load_pipeline_recipe",
    "run_pipeline",
    "sentence_corpus",
]

logger = logging.getLogger(__name__)

# What a rerun into the same output_dir may change: none of it changes what a stage makes.
RERUN_CHANGES = frozenset({"export_to", "export_force", "corpus.workers"})

_SPLITS = ("train", "dev")
_STAGES = ("stage1", "stage2")


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


@dataclass
class SplitLimits:
    """Cuts per split whose targets are generated (``None``: every cut): a limit keeps CPU runs short."""

    train: int | None = None
    dev: int | None = None


@dataclass
class CorpusSection:
    """The labelled synthetic corpus (:func:`azeros.data.corpus.build_synthetic_corpus`).

    Attributes:
        num_utterances: utterances in all splits together.
        sentences: WordNet example sentences spoken by the training voices (:func:`sentence_corpus`), training
            only; their TSIT_s targets join stage 1 (0: none).
        common_tokens: a sentence is kept when every token of the LLM (``generate.model``) is among its first
            this many.
        seed: seeds every choice (the same seed writes the same wav bytes).
        workers: parallel synthesizers (``None``: the CPUs).
    """

    num_utterances: int = 2000
    sentences: int = 0
    common_tokens: int = 16000
    seed: int = 0
    workers: int | None = None


@dataclass
class GenerateSection:
    """How the frozen LLM writes the targets (the transformers backend).

    Attributes:
        model: hub id, folder, GGUF file or embedded alias of the LLM.
        max_new_tokens: answer length limit.
        batch_size: rows decoded together.
        repetition_penalty: transformers' meaning (``None``: the LLM's own generation config).
        sp_candidates: the sp modes the self-elicit check chooses from.
        check_sample: training cuts the check generates targets for.
        limit: cuts per split of the sp targets (stage 2).
        drop_declines: stage 2 trains only on the targets in which the LLM did not decline
            (:func:`azeros.selfgen.check.declines`): a small LLM declines about half of its sp answers ("I'm sorry,
            as a chatbot I can't..."), and a projector trained on them learns to decline where it is asked to
            repeat or answer (docs/results/hear). Validation keeps every target.
    """

    model: str = "smollm2-135m-instruct"
    max_new_tokens: int = 1024
    batch_size: int = 64
    repetition_penalty: float | None = None
    sp_candidates: list[str] = field(default_factory=lambda: ["sift_sp", "sit_sp"])
    check_sample: int = 50
    limit: SplitLimits = field(default_factory=SplitLimits)
    drop_declines: bool = False


@dataclass
class StageTargets:
    """A target mode of a stage's mix.

    Attributes:
        limit: cuts per split (``None``: ``generate.limit``).
        max_new_tokens: answer length limit (``None``: ``generate.max_new_tokens``).
        weight: its share of the stage's mix (x the manifest's size).
    """

    limit: SplitLimits | None = None
    max_new_tokens: int | None = None
    weight: float = 1.0


@dataclass
class StageRecipe(TrainRecipe):
    """A stage's training recipe, less what the pipeline fills in: ``output_dir`` (``{output_dir}/stageN``),
    ``data.train`` and ``data.valid`` (the stage's targets), and stage 2's ``model.init_from`` (stage 1's
    model) and ``model.chat_mode`` (from the check's pick)."""

    output_dir: str = ""


def _stage1_default_targets() -> dict[str, StageTargets]:
    return {"sift_s": StageTargets()}  # as many cuts and as long as the sp targets


@dataclass
class PipelineRecipe:
    """A whole pipeline run (``recipes/mini.yaml``).

    Attributes:
        output_dir: every stage's folder goes here.
        export_to: where the final model, its logs and the check's report are copied (``None``: nowhere).
        export_force: replace what is in a non-empty ``export_to``.
        corpus: the synthetic corpus.
        generate: target generation.
        stage1_targets: stage 1's target modes (mode name -> its options).
        stage2_targets: modes stage 2 trains on beside SIFT_s and the picked sp mode(s) (each of those weighs
            1), e.g. TSIT_s so that the paralinguistic projector also learns where the answer is the words heard.
        stage1: the semantic projector's training.
        stage2: the paralinguistic projector's training (stage 1's frozen).
    """

    output_dir: str
    export_to: str | None = None
    export_force: bool = False
    corpus: CorpusSection = field(default_factory=CorpusSection)
    generate: GenerateSection = field(default_factory=GenerateSection)
    stage1_targets: dict[str, StageTargets] = field(default_factory=_stage1_default_targets)
    stage2_targets: dict[str, StageTargets] = field(default_factory=dict)
    stage1: StageRecipe = field(default_factory=StageRecipe)
    stage2: StageRecipe = field(default_factory=StageRecipe)

    def check(self) -> None:
        """Fail before anything runs, naming the key, on modes that do not exist or fields the pipeline fills."""
        for key, modes in (("generate.sp_candidates", self.generate.sp_candidates),
                           ("stage1_targets", list(self.stage1_targets)),
                           ("stage2_targets", list(self.stage2_targets))):
            for mode in modes:
                try:
                    get_mode(mode)
                except ValueError as error:
                    raise ConfigError(f"{key}: {error}") from None
        if not self.stage1_targets:
            raise ConfigError("stage1_targets is empty: stage 1 would have nothing to train on")
        for mode, options in self.stage2_targets.items():
            if mode == "sift_s" or mode in self.generate.sp_candidates:
                raise ConfigError(f"stage2_targets.{mode}: stage 2 trains on SIFT_s and the picked sp mode already; "
                                  "list only other modes there")
            first = self.stage1_targets.get(mode)
            if first is not None and (options.limit, options.max_new_tokens) not in (
                    (None, None), (first.limit, first.max_new_tokens)):
                raise ConfigError(f"stage2_targets.{mode}: stage 1 writes this mode's targets (one file per split); "
                                  f"leave its limit and max_new_tokens to stage1_targets.{mode}")
        for name in _STAGES:
            stage = getattr(self, name)
            filled = {"output_dir": stage.output_dir, "data.train": stage.data.train, "data.valid": stage.data.valid}
            if name == "stage2":
                filled.update({"model.init_from": stage.model.init_from, "model.chat_mode": stage.model.chat_mode})
            given = [f"{name}.{key}" for key, value in filled.items() if value]
            if given:
                raise ConfigError(f"{', '.join(given)}: set by the pipeline itself, leave out")


def load_pipeline_recipe(path: str | Path, overrides: Sequence[str] = ()) -> PipelineRecipe:
    """Read a pipeline recipe, apply ``key=value`` overrides, type every value and check it.

    Args:
        path: the pipeline YAML (see ``recipes/mini.yaml``).
        overrides: dotted ``key=value`` assignments, e.g. ``corpus.num_utterances=60 stage1.run.max_steps=20``.

    Raises:
        FileNotFoundError: when the recipe file does not exist.
        ConfigError: naming the key on an unknown key, a value of the wrong type or an unknown mode.
    """
    path = Path(path)
    return load_config(PipelineRecipe, read_tree(path, "pipeline recipe"), overrides, source=path.name)


def _stage_recipe(out: Path, name: str, stage: StageRecipe, train: list[TrainManifest], valid: list[str]) -> Path:
    recipe = replace(stage, output_dir=str(out / name), data=replace(stage.data, train=train, valid=valid))
    path = out / f"{name}.yaml"
    header = f"# written by azeros pipeline; rerun with: azeros train {path}\n"
    path.write_text(header + yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    return path


def _backend(recipe: PipelineRecipe, max_new_tokens: int | None = None) -> Any:
    gen = recipe.generate
    return build_backend("transformers", gen.model, max_new_tokens=max_new_tokens or gen.max_new_tokens,
                         max_batch=gen.batch_size, repetition_penalty=gen.repetition_penalty)


def _targets(out: Path, datasets: dict[str, DatasetSpec], modes: list[str], backend: Any,
             limits: SplitLimits, folder: str = "targets") -> None:
    for split, spec in datasets.items():  # a per-split limit keeps CPU runs short (None: every cut)
        run_generation(GenerateConfig(datasets=[spec], out_dir=out / folder, modes=modes,
                                      limit=getattr(limits, split)), backend)


def common_sentences(llm: str, common_tokens: int = 16000) -> list[str]:
    """WordNet's example sentences (:func:`wordnet_sentences`) whose every token of ``llm`` is among its first
    ``common_tokens``: BPE ids follow merge order, roughly word frequency, so these are common words, not the
    rarest spellings."""
    tokenizer = load_tokenizer(llm)

    def common(text: str) -> bool:
        return max(tokenizer(text, add_special_tokens=False)["input_ids"]) < common_tokens

    return wordnet_sentences(keep=common)


def sentence_corpus(out_dir: str | Path, num: int, llm: str, common_tokens: int = 16000, seed: int = 0,
                    workers: int | None = None) -> Path:
    """Speak ``num`` of the :func:`common_sentences` with the training voices (:func:`build_sentence_corpus`).

    Returns:
        The path of ``out_dir/cuts_train.jsonl.gz``.
    """
    texts = [f"{sentence}." for sentence in common_sentences(llm, common_tokens)]
    return build_sentence_corpus(texts, out_dir, num, seed, workers)


def _stage_targets(out: Path, recipe: PipelineRecipe, datasets: dict[str, DatasetSpec],
                   targets: dict[str, StageTargets]) -> dict[str, float]:
    """Generate a stage's target modes, each with its own limits and answer length; returns mode -> mix weight."""
    weights = {}
    for mode, options in targets.items():
        limits = options.limit or recipe.generate.limit
        backend = _backend(recipe, options.max_new_tokens) if get_mode(mode).self_generated else None
        _targets(out, datasets, [mode], backend, limits)
        weights[mode] = options.weight
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


def _run_stages(recipe: PipelineRecipe) -> _Stages:
    """Run (or continue) corpus, check, targets, stage 1 and stage 2 of a loaded pipeline recipe.

    Raises:
        ConfigError: when ``output_dir`` holds a run of other settings (beyond :data:`RERUN_CHANGES`).
    """
    out = Path(recipe.output_dir)
    saved, tree = out / "pipeline.yaml", config_tree(recipe)
    if saved.is_file():
        changes = {key: values for key, values in tree_changes(yaml.safe_load(saved.read_text()), tree).items()
                   if key not in RERUN_CHANGES}
        if changes:
            raise ConfigError(f"{out} holds a pipeline run with other settings: {describe_changes(changes)}; "
                              "give another output_dir, or the same settings to continue it")
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(tree, sort_keys=False))
    gen = recipe.generate

    _say("1/5 corpus: synthetic voices with known labels")
    corpus = build_synthetic_corpus(out / "corpus", recipe.corpus.num_utterances, recipe.corpus.seed,
                                    recipe.corpus.workers)
    datasets = {split: DatasetSpec(split, corpus[split], "en") for split in _SPLITS}
    sentences = None
    if recipe.corpus.sentences:
        sentences = DatasetSpec("sentences", sentence_corpus(
            out / "sentences", recipe.corpus.sentences, gen.model, recipe.corpus.common_tokens, recipe.corpus.seed,
            recipe.corpus.workers), "en")
    backend = _backend(recipe)

    _say("2/5 self-elicit check: does the LLM volunteer the speaker labels without an instruction?")
    candidates = gen.sp_candidates
    check = GenerateConfig(datasets=[datasets["train"]], out_dir=out / "check", modes=candidates,
                           limit=gen.check_sample)
    run_generation(check, backend)
    report = elicit_report(read_cuts([output_paths(out / "check", "train", m, 0)[0] for m in candidates]))
    pick = report.pick(next((m for m in candidates if m.startswith("sift_")), "sift_sp"))
    summary = "\n".join([report.table(), "", pick.reason, *report.declining()]) + "\n"
    (out / "check" / "report.txt").write_text(summary)
    logger.info("%s", summary)
    sp_modes = pick.modes

    _say(f"3/5 targets: {' + '.join(sp_modes)} and stage 1's for {', '.join(_SPLITS)}")
    _targets(out, datasets, sp_modes, backend, gen.limit)
    del backend  # frees the generation copy of the LLM before training loads its own
    stage1_weights = _stage_targets(out, recipe, datasets, recipe.stage1_targets)
    modes = ["sift_s", *sp_modes]
    if "sift_s" not in stage1_weights:
        _targets(out, datasets, ["sift_s"], _backend(recipe), gen.limit)

    stage1_train = [TrainManifest(_manifest(out, "train", mode), weight) for mode, weight in stage1_weights.items()]
    if sentences is not None:  # transcripts: no generation
        run_generation(GenerateConfig(datasets=[sentences], out_dir=out / "targets", modes=["tsit_s"]), None)
        stage1_train.append(TrainManifest(_manifest(out, sentences.name, "tsit_s")))

    _say(f"4/5 stage 1: the semantic projector on {' + '.join(_mode_names(list(stage1_weights)))}"
         + (f" (and TSIT_s of {recipe.corpus.sentences} WordNet sentences)" if sentences is not None else ""))
    stage1 = _stage_recipe(out, "stage1", recipe.stage1, stage1_train,
                           [_manifest(out, "dev", mode) for mode in stage1_weights])
    stage1_model = _train_once(stage1)

    extra = {mode: replace(recipe.stage1_targets.get(mode, options), weight=options.weight)  # stage 1's files
             for mode, options in recipe.stage2_targets.items()}
    stage2_weights = {mode: 1.0 for mode in modes} | _stage_targets(out, recipe, datasets, extra)
    _say(f"5/5 stage 2: the paralinguistic projector on {' + '.join(_mode_names(list(stage2_weights)))}, "
         "stage 1 frozen" + (", targets that decline left out" if gen.drop_declines else ""))
    stage2_train = []
    for mode, weight in stage2_weights.items():
        manifest = _manifest(out, "train", mode)
        if gen.drop_declines and get_mode(mode).self_generated:
            kept = out / "stage2_kept" / Path(manifest).name
            count, dropped = write_without_declines(manifest, kept)
            logger.info("%s: %d targets kept, %d that decline left out (%s)", mode, count, dropped, kept)
            manifest = str(kept)
        stage2_train.append(TrainManifest(manifest, weight))
    model = replace(recipe.stage2.model, init_from=str(stage1_model), **answer_modes(sp_modes))
    stage2 = _stage_recipe(out, "stage2", replace(recipe.stage2, model=model), stage2_train,
                           [_manifest(out, "dev", mode) for mode in stage2_weights])
    return _Stages(out, datasets, sp_modes, list(stage1_weights), stage1_model, _train_once(stage2))


def run_pipeline(recipe: str | Path, overrides: Sequence[str] = ()) -> Path:
    """Run (or continue) every stage of a pipeline recipe.

    Args:
        recipe: the pipeline YAML (see ``recipes/mini.yaml``).
        overrides: dotted ``key=value`` assignments, e.g. ``corpus.num_utterances=60 stage1.run.max_steps=20``.

    Returns:
        The exported model folder.
    """
    loaded = load_pipeline_recipe(recipe, overrides)
    built = _run_stages(loaded)
    export_to = Path(loaded.export_to) if loaded.export_to else None
    return _export(built.out, built.stage2, export_to, built.sp_modes, loaded.export_force)


def ablation_models(recipe: str | Path, overrides: Sequence[str] = ()) -> dict[str, Path]:
    """The models of the paper's comparisons (Tables 3-5), trained on one data budget.

    Runs (or continues) the pipeline without exporting, then trains the stage-1 ablations: the semantic
    projector on TSIT_s (transcripts behind an ASR instruction), on SIT_s (the LLM's answers to "Repeat
    the above content.") and on SIFT_s alone, each on the cuts of the pipeline's SIFT_s targets, with the
    same stage-1 recipe and steps. Their targets go to ``ablation_targets/``, apart from the pipeline's.

    Returns:
        ``{"TSIT_s": ..., "SIT_s": ..., "SIFT_s": ..., "<stage 1 modes>": ..., "<stage 1>+<sp mode(s)>": ...}``,
        model folders (the pipeline's own stage 1 is listed apart when it is not SIFT_s alone).
    """
    loaded = load_pipeline_recipe(recipe, overrides)
    built = _run_stages(loaded)
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
    every_cut = SplitLimits()
    _targets(out, sift_cuts, ["tsit_s"], None, every_cut, folder="ablation_targets")  # the transcript itself: no LLM
    _targets(out, sift_cuts, ["sit_s"], _backend(loaded), every_cut, folder="ablation_targets")
    models = {}
    for mode, name in (("tsit_s", "TSIT_s"), ("sit_s", "SIT_s"), ("sift_s", "SIFT_s")):
        if mode == "sift_s" and built.stage1_modes == ["sift_s"]:
            models[name] = built.stage1
            continue
        root = out / "targets" if mode == "sift_s" else ablation
        train, valid = (str(output_paths(root, split, mode, 0)[0]) for split in _SPLITS)
        models[name] = _train_once(_stage_recipe(out, f"ablation_{mode}", loaded.stage1, [TrainManifest(train)], [valid]))
    stage1_name = "+".join(_mode_names(built.stage1_modes))
    models[stage1_name] = built.stage1
    models["+".join([stage1_name, *_mode_names(built.sp_modes)])] = built.stage2
    return models


def compare(config: EvalConfig) -> EvalOutcome:
    """``azeros eval compare``: ``config.systems`` and the compared models on the mini-benchmark, tabulated together.

    The models are the ``config.pipeline`` recipe's and its stage-1 ablations (:func:`ablation_models`, trained
    or continued first), or else ``config.models``: ``NAME=RECIPE.yaml`` (that recipe's final model, trained when
    missing) or ``NAME=MODEL_DIR``.
    """
    if config.pipeline:
        models = ablation_models(config.pipeline, config.pipeline_overrides)
    else:
        models = {name: model_folder(source) for name, _, source in (model.partition("=") for model in config.models)}
    return evaluate(config, models)


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

"""Training recipes: one YAML file, read into typed sections and checked before anything loads.

A recipe names the model (frozen LLM, frozen encoders, which projectors load from where and which
train), the data (weighted manifests, duration buckets), the optimizer and schedule, and the run
(steps, precision, checkpoints, averaging, logs). ``key=value`` overrides on the command line use
dotted paths: ``optim.lr=3e-4 data.max_cuts=8``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from azeros.config import config_tree, load_config, read_tree, tree_changes
from azeros.errors import ConfigError
from azeros.models.projector import ALIGN_SCALE

__all__ = [
    "AverageSection",
    "CacheSection",
    "DataSection",
    "ModelSection",
    "OptimSection",
    "RunSection",
    "TrainManifest",
    "TrainRecipe",
    "load_recipe",
]


@dataclass
class TrainManifest:
    """One training manifest of the mix.

    Attributes:
        manifest: a generated Lhotse manifest (``.jsonl.gz``).
        weight: its sampling weight; the share of the mix is ``weight x hours`` (as in the paper).
        hours: the manifest's hours; ``None``: summed from the cuts once at start.
        mode: the mode of its targets that do not store one (a reference manifest's; never read from the
            file's name).
    """

    SHORTHAND: ClassVar[str] = "manifest"  # a bare path is a manifest of weight 1

    manifest: str
    weight: float = 1.0
    hours: float | None = None
    mode: str | None = None


@dataclass
class ModelSection:
    """The model: frozen parts, and which projectors load and which train.

    Attributes:
        llm: hub id, folder, GGUF file or embedded alias of the frozen LLM.
        encoders: ``[{kind, role, options}]``, semantic first.
        projector_stack: frames concatenated per LLM position (k).
        projector_hidden: projector hidden width (``None``: the LLM's width).
        projector_context_layers: Transformer layers inside the semantic projector (0: the paper's projector;
            see :class:`azeros.models.projector.Projector`).
        projector_compress: CTC-compress the semantic projector's outputs (needs ``align.steps`` > 0 or a
            compressing projector to start from; :class:`azeros.models.projector.Projector`).
        compress_read_scale: how sharply the LLM reads a compressed position's token (see
            :class:`azeros.models.SpeechLLMConfig`); saved with the exported model.
        dtype: the frozen LLM's dtype (``auto``: bf16 on a GPU that has it, fp32 otherwise).
        init_from: a model folder or weights file to load projectors from (stage 2: the stage-1 export).
        init_roles: which projectors must load from ``init_from``, completely, or the run does not start.
        train_roles: which projectors train; every other projector is frozen and must be in ``init_roles``.
        chat_mode: the exported model's inference context (see :class:`azeros.models.SpeechLLMConfig`).
        chat_template: overrides the LLM's chat template (``chatml``: the reference's, for its targets
            written with no system turn; see :class:`azeros.models.SpeechLLMConfig`).
        activation_checkpointing: keep only each frozen LLM decoder layer's input in the forward pass and
            recompute the layer in the backward one. The loss reaches the projectors through the whole LLM,
            so at 7B and long answers its activations are what bounds the batch; this trades about one more
            LLM forward per step for them (same gradients). Passes then start at position 0 (no shared
            prefix states: a recomputed layer would write its cache twice).
    """

    llm: str = "smollm2-135m-instruct"
    encoders: list[dict[str, Any]] = field(
        default_factory=lambda: [{"kind": "whisper-ct2", "role": "semantic", "options": {"path": "whisper-tiny.en-ct2"}}]
    )
    projector_stack: int = 4
    projector_hidden: int | None = None
    projector_context_layers: int = 0
    projector_compress: bool = False
    compress_read_scale: float = ALIGN_SCALE
    dtype: str = "auto"
    init_from: str | None = None
    init_roles: list[str] = field(default_factory=list)
    train_roles: list[str] = field(default_factory=lambda: ["semantic"])
    chat_mode: str | None = None
    chat_template: str | None = None
    activation_checkpointing: bool = False


@dataclass
class DataSection:
    """What is read and how it is batched.

    Attributes:
        train: the manifests mixed for training (each repeated endlessly, then multiplexed by weight).
        valid: held-out manifests for teacher-forced loss and accuracy.
        max_duration: seconds of audio per batch on one process (lhotse's DynamicBucketingSampler).
        max_cuts: at most this many cuts per batch.
        num_buckets: duration buckets.
        buffer_size: cuts held for bucketing and shuffling.
        min_seconds: cuts shorter than this are skipped.
        max_seconds: cuts longer than this are skipped.
        speed_perturb: speed factors drawn per cut (e.g. ``[0.9, 1.0, 1.1]``); ``[]`` for none. Perturbed
            audio is encoded every time: the encoder cache only serves unperturbed input.
        spec_augment: the share of training utterances whose fbank is SpecAugmented before the encoders
            (:func:`azeros.audio.spec_augment`, the reference's settings; it used 0.9); Zipformer encoders only.
            Like speed perturbation, augmented audio is encoded every time (the cache serves clean input only).
        valid_max_cuts: validation batch size.
        max_tokens_per_forward: split each batch into micro-batches of similar length holding at most
            this many padded tokens (``None``: one forward pass per batch). Saves the work of padding
            short answers to long ones; the update is the same.
    """

    train: list[TrainManifest] = field(default_factory=list)
    valid: list[str] = field(default_factory=list)
    max_duration: float = 100.0
    max_cuts: int = 4
    num_buckets: int = 30
    buffer_size: int = 20000
    min_seconds: float = 0.5
    max_seconds: float = 30.0
    speed_perturb: list[float] = field(default_factory=list)
    spec_augment: float = 0.0
    valid_max_cuts: int = 8
    max_tokens_per_forward: int | None = None


@dataclass
class CacheSection:
    """The frozen-encoder output cache.

    Attributes:
        enabled: read encoder frames from the cache (and fill it on first use).
        dir: where shards go; ``None``: ``{output_dir}/encoder_cache``.
        shard_items: utterances per safetensors shard.
    """

    enabled: bool = True
    dir: str | None = None
    shard_items: int = 512


@dataclass
class OptimSection:
    """AdamW over the trainable projectors, warmup then decay.

    Attributes:
        lr: peak learning rate.
        betas: AdamW betas.
        eps: AdamW epsilon.
        weight_decay: AdamW weight decay.
        grad_accum: micro-batches per optimizer step (on each process).
        clip_grad_norm: clip the global gradient norm to this (``None``: no clipping).
        schedule: ``cosine`` (to ``min_lr_ratio x lr`` at ``max_steps``), ``eden`` (the reference's
            Eden2, ``(1 + (step / eden_steps)^2)^-0.5``) or ``constant``.
        warmup_steps: linear warmup from 0.
        min_lr_ratio: cosine's floor.
        eden_steps: Eden's step scale.
        max_nonfinite_steps: a step whose loss or gradient is NaN or infinite is skipped (no update); this
            many in a row stop the run with an error.
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_accum: int = 1
    clip_grad_norm: float | None = 1.0
    schedule: Literal["cosine", "eden", "constant"] = "cosine"
    warmup_steps: int = 500
    min_lr_ratio: float = 0.05
    eden_steps: float = 7500.0
    max_nonfinite_steps: int = 5


@dataclass
class AverageSection:
    """Averaging of the trainable projector weights (nothing else is copied).

    Attributes:
        kind: ``ema``, ``mean`` (the paper's running mean since ``start``) or ``none``.
        every: update every this many optimizer steps.
        decay: EMA decay per update.
        start: the running mean starts at this step.
    """

    kind: Literal["ema", "mean", "none"] = "ema"
    every: int = 1
    decay: float = 0.999
    start: int = 0


@dataclass
class AlignSection:
    """Stage 0 of stage 1: CTC of the semantic projector onto the LLM's token embeddings, before any LLM
    pass (:mod:`azeros.training.align`). A ``--resume`` continues an interrupted alignment exactly (from
    ``{output_dir}/checkpoints/align``) and never repeats a finished one.

    Attributes:
        steps: alignment steps (0: none).
        batch_size: utterances per step.
        lr: peak learning rate (short warmup, then cosine).
        scale: the logit scale of the cosine similarities (a compressing projector reads its posteriors
            at the default, :data:`azeros.models.projector.ALIGN_SCALE`).
        norm_weight: weight of the term that keeps output norms at the embeddings' typical norm.
        frame_dropout: share of encoder frame values zeroed in each step (SpecAugment-like regularisation:
            the training voices are few and synthetic, the held-out ones are not).
        time_masks: spans of frames zeroed per utterance in each step, each up to 5% of its frames.
        length_buckets: draw each batch from one of this many groups of utterances of similar length (1: from
            all): a batch is padded to its longest utterance, and random batches of the hear corpus are half
            padding.
        save_every: steps between the alignment's checkpoints (it is also saved when it ends).
    """

    steps: int = 0
    batch_size: int = 32
    lr: float = 2e-3
    scale: float = ALIGN_SCALE
    norm_weight: float = 0.1
    frame_dropout: float = 0.0
    time_masks: int = 0
    length_buckets: int = 1
    save_every: int = 500


@dataclass
class RunSection:
    """How long, on what, and what is written.

    Attributes:
        max_steps: optimizer steps.
        precision: ``auto`` (bf16 autocast on a GPU that has it, fp32 otherwise), ``bf16`` or ``fp32``.
        device: ``auto``, ``cpu`` or ``cuda``.
        log_every: steps between log lines (jsonl, TensorBoard, progress bar).
        valid_every: steps between validations (0: only at the end).
        save_every: steps between checkpoints (0: only at the end).
        keep_checkpoints: newest checkpoints kept.
        export_every: steps between exports of the averaged weights as a loadable model folder,
            ``{output_dir}/exports/step-{N}`` (0: only ``final``); what a learning curve is drawn from.
        progress: show a progress bar.
        shard_llm: with several processes, shard the frozen LLM's decoder layers over them (FSDP2) instead
            of holding a whole copy in each: for an LLM that does not fit one GPU.
    """

    max_steps: int = 10000
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    device: str = "auto"
    log_every: int = 10
    valid_every: int = 1000
    save_every: int = 1000
    keep_checkpoints: int = 3
    export_every: int = 0
    progress: bool = True
    shard_llm: bool = False


@dataclass
class TrainRecipe:
    """A whole training run.

    Attributes:
        output_dir: checkpoints, logs, plot and the exported model (``{output_dir}/final``).
        seed: seeds projector initialisation, mixing, bucketing and perturbation.
    """

    output_dir: str
    seed: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    cache: CacheSection = field(default_factory=CacheSection)
    optim: OptimSection = field(default_factory=OptimSection)
    average: AverageSection = field(default_factory=AverageSection)
    align: AlignSection = field(default_factory=AlignSection)
    run: RunSection = field(default_factory=RunSection)

    def check(self) -> None:
        """Fail early, with the field named, on settings that cannot work together."""
        roles = [e.get("role", "semantic") for e in self.model.encoders]
        for name, listed in (("model.train_roles", self.model.train_roles), ("model.init_roles", self.model.init_roles)):
            unknown = sorted(set(listed) - set(roles))
            if unknown:
                raise ConfigError(f"{name} names {unknown}, but the model's encoders are {roles}")
        if not self.model.train_roles:
            raise ConfigError("model.train_roles is empty: nothing would train")
        untrained = sorted(set(roles) - set(self.model.train_roles) - set(self.model.init_roles))
        if untrained:
            raise ConfigError(
                f"the {untrained} projector would stay frozen at random weights: list it in model.init_roles "
                "(loaded from model.init_from) or in model.train_roles"
            )
        if self.model.init_roles and not self.model.init_from:
            raise ConfigError(f"model.init_roles is {self.model.init_roles} but model.init_from is not set")
        if not self.data.train:
            raise ConfigError("data.train lists no manifests")
        if self.align.steps and ("semantic" not in self.model.train_roles or not self.cache.enabled):
            raise ConfigError("align.steps > 0 aligns the semantic projector from the encoder cache: it needs "
                              "'semantic' in model.train_roles and cache.enabled: true")
        if self.align.save_every < 1:
            raise ConfigError(f"align.save_every must be >= 1, got {self.align.save_every}")
        if self.align.length_buckets < 1:
            raise ConfigError(f"align.length_buckets must be >= 1 (1: batches drawn from all utterances), "
                              f"got {self.align.length_buckets}")
        fbank_less = [e.get("kind") for e in self.model.encoders if e.get("kind") != "zipformer"]
        if self.data.spec_augment and fbank_less:
            raise ConfigError(f"data.spec_augment masks the fbank of zipformer encoders; this model has {fbank_less}")
        if not 0.0 <= self.data.spec_augment <= 1.0:
            raise ConfigError(f"data.spec_augment is a share of utterances, in [0, 1]; got {self.data.spec_augment}")
        if self.data.num_buckets < 2:
            raise ConfigError("data.num_buckets must be >= 2 (lhotse's DynamicBucketingSampler)")
        if self.optim.grad_accum < 1 or self.run.max_steps < 1 or self.optim.max_nonfinite_steps < 1:
            raise ConfigError("optim.grad_accum, optim.max_nonfinite_steps and run.max_steps must be >= 1")
        if self.average.kind != "none" and not 0.0 < self.average.decay < 1.0:
            raise ConfigError(f"average.decay must be in (0, 1), got {self.average.decay}")

    def check_inputs(self) -> None:
        """Fail before any model loads when a manifest the recipe reads, or the model its frozen projectors load
        from, is missing.

        Raises:
            FileNotFoundError: naming every missing manifest, or the missing ``model.init_from``.
        """
        paths = [m.manifest for m in self.data.train] + list(self.data.valid)
        missing = [path for path in paths if not Path(path).is_file()]
        if missing:
            raise FileNotFoundError(
                f"manifests not found: {', '.join(missing)} (make them with the `azeros generate` command in the "
                "recipe's header; relative paths are relative to the working directory)"
            )
        if self.model.init_roles and not Path(self.model.init_from).exists():
            raise FileNotFoundError(
                f"model.init_from {self.model.init_from} not found: the {'/'.join(self.model.init_roles)} projector "
                "loads from it (the `final` folder of a finished stage-1 run: train the recipe that makes it first)"
            )

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain YAML tree (tuples as lists): what ``{output_dir}/recipe.yaml`` holds."""
        return config_tree(self)

    def changes_from(self, saved: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """The settings that differ from a saved recipe tree, ``{dotted key: (saved, now)}``
        (:func:`azeros.config.tree_changes`)."""
        return tree_changes(saved, self.to_dict())


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainRecipe:
    """Read a recipe, apply ``key=value`` overrides, convert every value to its field's type and check it.

    Relative manifest paths, ``model.init_from`` and ``output_dir`` stay relative to the working
    directory (recipes are run from the repository root, as their first line says).

    Args:
        path: the YAML recipe.
        overrides: dotted ``key=value`` assignments, applied in order.

    Returns:
        The checked recipe.

    Raises:
        FileNotFoundError: when the recipe file does not exist.
        ConfigError: on unknown keys, values of the wrong type or settings that cannot work together.
    """
    path = Path(path)
    return load_config(TrainRecipe, read_tree(path, "recipe"), overrides, source=path.name)

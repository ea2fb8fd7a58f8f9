"""Training recipes: one YAML file, read into typed sections and checked before anything loads.

A recipe names the model (frozen LLM, frozen encoders, which projectors load from where and which
train), the data (weighted manifests, duration buckets), the optimizer and schedule, and the run
(steps, precision, checkpoints, averaging, logs). ``key=value`` overrides on the command line use
dotted paths: ``optim.lr=3e-4 data.max_cuts=8``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "AverageSection",
    "CacheSection",
    "DataSection",
    "ModelSection",
    "OptimSection",
    "RunSection",
    "TrainManifest",
    "TrainRecipe",
    "apply_override",
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
        dtype: the frozen LLM's dtype (``auto``: bf16 on a GPU that has it, fp32 otherwise).
        init_from: a model folder or weights file to load projectors from (stage 2: the stage-1 export).
        init_roles: which projectors must load from ``init_from``, completely, or the run does not start.
        train_roles: which projectors train; every other projector is frozen and must be in ``init_roles``.
        chat_mode: the exported model's inference context (see :class:`azeros.models.SpeechLLMConfig`).
        chat_template: overrides the LLM's chat template (``chatml``: the reference's, for its targets
            written with no system turn; see :class:`azeros.models.SpeechLLMConfig`).
    """

    llm: str = "smollm2-135m-instruct"
    encoders: list[dict[str, Any]] = field(
        default_factory=lambda: [{"kind": "whisper-ct2", "role": "semantic", "options": {"path": "whisper-tiny.en-ct2"}}]
    )
    projector_stack: int = 4
    projector_hidden: int | None = None
    dtype: str = "auto"
    init_from: str | None = None
    init_roles: list[str] = field(default_factory=list)
    train_roles: list[str] = field(default_factory=lambda: ["semantic"])
    chat_mode: str | None = None
    chat_template: str | None = None


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
    run: RunSection = field(default_factory=RunSection)

    def check(self) -> None:
        """Fail early, with the field named, on settings that cannot work together."""
        roles = [e.get("role", "semantic") for e in self.model.encoders]
        for name, listed in (("model.train_roles", self.model.train_roles), ("model.init_roles", self.model.init_roles)):
            unknown = sorted(set(listed) - set(roles))
            if unknown:
                raise ValueError(f"{name} names {unknown}, but the model's encoders are {roles}")
        if not self.model.train_roles:
            raise ValueError("model.train_roles is empty: nothing would train")
        untrained = sorted(set(roles) - set(self.model.train_roles) - set(self.model.init_roles))
        if untrained:
            raise ValueError(
                f"the {untrained} projector would stay frozen at random weights: list it in model.init_roles "
                "(loaded from model.init_from) or in model.train_roles"
            )
        if self.model.init_roles and not self.model.init_from:
            raise ValueError(f"model.init_roles is {self.model.init_roles} but model.init_from is not set")
        if not self.data.train:
            raise ValueError("data.train lists no manifests")
        if self.data.num_buckets < 2:
            raise ValueError("data.num_buckets must be >= 2 (lhotse's DynamicBucketingSampler)")
        if self.optim.grad_accum < 1 or self.run.max_steps < 1 or self.optim.max_nonfinite_steps < 1:
            raise ValueError("optim.grad_accum, optim.max_nonfinite_steps and run.max_steps must be >= 1")
        if self.average.kind != "none" and not 0.0 < self.average.decay < 1.0:
            raise ValueError(f"average.decay must be in (0, 1), got {self.average.decay}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, where: str) -> Any:
    """A dataclass from a mapping, refusing unknown keys (a typo must not be silently ignored)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(fields)}")
    sections = {"model": ModelSection, "data": DataSection, "cache": CacheSection, "optim": OptimSection,
                "average": AverageSection, "run": RunSection}
    values = {}
    for name, value in data.items():
        if cls is TrainRecipe and name in sections:
            value = _build(sections[name], value or {}, f"{where}.{name}")
        elif cls is DataSection and name == "train":
            value = [_build(TrainManifest, item if isinstance(item, dict) else {"manifest": item}, f"{where}.train")
                     for item in value or []]
        elif name == "betas":
            value = tuple(value)
        values[name] = value
    return cls(**values)


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Set a dotted ``key=value`` in a YAML tree (the value parsed as YAML: ``3e-4``, ``[a, b]``, ``null``)."""
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise ValueError(f"override {assignment!r} is not key=value")
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(raw)  # "3e-4" -> float, "[a, b]" -> list, "null" -> None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainRecipe:
    """Read a recipe, apply ``key=value`` overrides and check it.

    Relative manifest paths, ``model.init_from`` and ``output_dir`` stay relative to the working
    directory (recipes are run from the repository root, as their first line says).

    Args:
        path: the YAML recipe.
        overrides: dotted ``key=value`` assignments, applied in order.

    Returns:
        The checked recipe.

    Raises:
        ValueError: on unknown keys or settings that cannot work together.
    """
    tree = yaml.safe_load(Path(path).read_text()) or {}
    for assignment in overrides:
        apply_override(tree, assignment)
    recipe = _build(TrainRecipe, tree, Path(path).name)
    recipe.check()
    return recipe

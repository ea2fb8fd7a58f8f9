"""The training recipe: one loop, top to bottom (torchtune's recipe shape, nanoGPT's legibility).

Only projectors train. Each optimizer step draws ``grad_accum`` batches on every process, renders
each utterance's conversation exactly as its target was generated, scatters the projected audio into the
frozen LLM's input, and normalizes the cross-entropy by the supervised tokens of the whole global batch.
So the update is the same whether the global batch is split over micro-batches or processes.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.utils.checkpoint
from tqdm import tqdm
from transformers import Cache, PreTrainedModel

from azeros.errors import ConfigError, RunFolderError
from azeros.models import EncoderSpec, SpeechLLM, SpeechLLMConfig, load_projectors, projector_state, save_model
from azeros.training.align import align_before_training
from azeros.training.averaging import ProjectorAverage
from azeros.training.cache import EncoderCache
from azeros.training.checkpoint import Checkpoint, latest_checkpoint, rng_state, set_rng_state
from azeros.training.data import (
    encoded_audio,
    load_items,
    make_batch,
    manifest_cuts,
    supervised_tokens,
    token_batches,
    training_cuts,
    training_sampler,
    usable,
)
from azeros.training.distributed import Distributed
from azeros.training.logs import TrainLog, plot_curves
from azeros.training.recipe import ModelSection, TrainRecipe, load_recipe
from azeros.training.run_folder import check_run_folder, start_run_folder
from azeros.training.schedule import lr_at

__all__ = ["build_model", "checkpoint_llm_layers", "evaluate", "fill_cache", "model_folder", "open_caches", "train", "trained_model"]

logger = logging.getLogger(__name__)


def build_model(section: ModelSection, seed: int, verbose: bool = True) -> SpeechLLM:
    """Build the SpeechLLM of a recipe, load the projectors it names, freeze the ones it does not train.

    Projectors start from ``seed`` (the same on every process). Projectors in ``init_roles`` must then load
    completely from ``init_from``, or nothing starts: stage 2 never trains on top of a random stage-1
    projector.

    Raises:
        ConfigError: when ``init_from`` is missing or lacks a complete projector named in ``init_roles``.
    """
    config = SpeechLLMConfig(
        llm=section.llm, encoders=[EncoderSpec(**spec) for spec in section.encoders],
        projector_stack=section.projector_stack, projector_hidden=section.projector_hidden,
        projector_context_layers=section.projector_context_layers,
        projector_compress=section.projector_compress, compress_read_scale=section.compress_read_scale,
        dtype=section.dtype,
        chat_mode=section.chat_mode, chat_template=section.chat_template,
    )
    model = SpeechLLM(config)
    torch.manual_seed(seed)
    for projector in model.projectors.values():
        projector.reset_parameters()
    if section.init_roles:
        try:
            loaded = load_projectors(model, section.init_from, roles=section.init_roles)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(
                f"cannot start: model.init_from must hold the complete {'/'.join(section.init_roles)} projector "
                f"(e.g. the `final` folder of a finished stage-1 run), but {error}"
            ) from None
        if verbose:
            logger.info("loaded %d tensors from %s: %s", len(loaded), section.init_from, ", ".join(loaded))
    for role, projector in model.projectors.items():
        projector.requires_grad_(role in section.train_roles)
    if section.activation_checkpointing:
        checkpoint_llm_layers(model.llm)
    if verbose:
        frozen = [r for r in model.roles if r not in section.train_roles]
        logger.info("training the %s projector(s); frozen: %s", ", ".join(section.train_roles), ", ".join(frozen) or "none")
    return model


def checkpoint_llm_layers(llm: PreTrainedModel) -> int:
    """Recompute each decoder layer of the frozen LLM in the backward pass instead of keeping its activations.

    transformers' own switch (``gradient_checkpointing_enable``) acts only on a model in training mode, and a
    frozen LLM stays in eval mode (dropout off), so each layer's ``forward`` is wrapped here, inside its hooks
    (FSDP's run once). Without gradients (validation, generation) a layer runs as before. Returns how many
    layers are wrapped.

    Raises:
        ValueError: from a wrapped layer given a key/value cache while gradients are on (the recompute would
            append to the cache a second time).
    """
    layers = llm.get_decoder().layers
    for layer in layers:
        layer.forward = functools.partial(_checkpointed, layer.forward)
    return len(layers)


def _checkpointed(forward, *args, **kwargs):
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    if any(isinstance(value, Cache) for value in kwargs.values()):
        raise ValueError("a checkpointed LLM layer cannot fill a key/value cache: pass reuse_prefix=False")
    return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)


def _sharded(recipe: TrainRecipe, dist: Distributed) -> bool:
    """Whether the frozen LLM is sharded over processes, which then run every pass in lockstep: no pass may
    start after a shared prefix (its states, computed on first sight, would put the processes out of step)."""
    return recipe.run.shard_llm and dist.world_size > 1


def open_caches(recipe: TrainRecipe, model: SpeechLLM, writer_tag: str = "0") -> dict[str, EncoderCache]:
    """The encoder caches of a recipe by role (none when ``cache.enabled`` is off)."""
    if not recipe.cache.enabled:
        return {}
    root = Path(recipe.cache.dir or Path(recipe.output_dir) / "encoder_cache")
    return {
        role: EncoderCache(root / role, model.encoders[role], shard_items=recipe.cache.shard_items, writer_tag=writer_tag)
        for role in model.roles
    }


@torch.no_grad()
def evaluate(model: SpeechLLM, recipe: TrainRecipe, caches: dict[str, EncoderCache], dist: Distributed, use_bf16: bool) -> dict[str, float]:
    """Teacher-forced loss and next-token accuracy on the answer tokens of the held-out manifests.

    Every process takes every ``world_size``-th utterance; sums are combined before dividing.
    """
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, tokens
    size = recipe.data.valid_max_cuts
    for path in recipe.data.valid:
        every = [c for c in manifest_cuts(path) if usable(c, recipe.data)]
        mine = every[dist.rank :: dist.world_size]
        chunks = [mine[start : start + size] for start in range(0, len(mine), size)]
        # A sharded LLM runs in lockstep: a process with fewer chunks repeats one, uncounted.
        passes = dist.max(len(chunks)) if recipe.run.shard_llm else len(chunks)
        for index in range(passes):
            counted = index < len(chunks)
            items = load_items(chunks[index] if counted else (mine or every)[:1], model.roles, caches=caches)
            if not items:  # every cut of the chunk had bad audio (logged)
                continue
            batch = make_batch(model, items, caches)
            with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                result = model(batch, reuse_prefix=not _sharded(recipe, dist))
            if counted:
                totals += torch.tensor([result.loss.item() * result.tokens, result.correct, result.tokens], dtype=torch.float64)
    dist.sum(totals)
    model.train()
    return {"loss": totals[0].item() / max(totals[2].item(), 1), "acc": totals[1].item() / max(totals[2].item(), 1)}


def fill_cache(recipe: TrainRecipe) -> dict[str, int]:
    """Encode every usable cut of the recipe's manifests into its encoder cache (``azeros cache``).

    Returns:
        Utterances newly encoded, by role.
    """
    if not recipe.cache.enabled:
        raise ConfigError("cache.enabled is false in this recipe: nothing to fill")
    recipe.check_inputs()
    model = build_model(recipe.model, recipe.seed)
    model.eval()
    caches = open_caches(recipe, model)
    return _fill(model, caches, recipe)


def _fill(model: SpeechLLM, caches: dict[str, EncoderCache], recipe: TrainRecipe) -> dict[str, int]:
    """Encode the usable cuts of the recipe's manifests that the caches lack; returns the counts by role."""
    before = {role: len(cache.location) for role, cache in caches.items()}
    paths = [m.manifest for m in recipe.data.train] + list(recipe.data.valid)
    for path in paths:
        pending = []
        for cut in tqdm(manifest_cuts(path), desc=str(path), disable=not recipe.run.progress):
            if usable(cut, recipe.data) and not all(cut in cache for cache in caches.values()):
                pending.append(cut)
            if len(pending) == recipe.data.max_cuts:
                _encode(model, pending, caches)
                pending = []
        if pending:
            _encode(model, pending, caches)
    for cache in caches.values():
        cache.flush()
    return {role: len(cache.location) - before[role] for role, cache in caches.items()}


def _export_average(model: SpeechLLM, average: ProjectorAverage, trainable: dict[str, torch.Tensor],
                    folder: Path) -> None:
    """Save the averaged weights as a model folder mid-run; the live weights are put back bit for bit."""
    live = {name: p.detach().clone() for name, p in trainable.items()}
    average.copy_to(trainable)
    save_model(model, folder)
    with torch.no_grad():
        for name, p in trainable.items():
            p.copy_(live[name])


def _encode(model: SpeechLLM, cuts: list, caches: dict[str, EncoderCache]) -> None:
    """Put the frames of ``cuts`` into the caches (cuts with bad audio are logged and left out).

    Only the encoders run: nothing is rendered, projected or embedded (a compressing projector's posterior
    over the whole vocabulary made filling a cache ~10x slower than encoding).
    """
    items = load_items(cuts, model.roles, caches=caches)
    if items:
        encoded_audio(model, items, caches)


def train(recipe: TrainRecipe, resume: bool | str = False, overwrite: bool = False, force_resume: bool = False) -> Path:
    """Run a training recipe to ``run.max_steps`` and export the model.

    The resolved recipe is saved as ``{output_dir}/recipe.yaml``; a folder holding another run is refused
    (see :mod:`azeros.training.run_folder`).

    Args:
        recipe: the checked recipe.
        resume: ``True`` to continue from the newest checkpoint under ``{output_dir}/checkpoints``, or a
            checkpoint folder; the continued run computes the same weights as one that was never stopped.
        overwrite: start afresh in a folder that holds a run, deleting its checkpoints, exports and logs.
        force_resume: resume even though the recipe changed beyond what a resume may change.

    Returns:
        The exported model folder, ``{output_dir}/final`` (load it with :func:`azeros.models.load_model`).

    Raises:
        FileNotFoundError: when a manifest is missing (before any model loads).
        RunFolderError: when ``output_dir`` holds another run, or the run's recipe changed on resume.
    """
    out = Path(recipe.output_dir)
    recipe.check_inputs()
    check_run_folder(recipe, resume, overwrite, force_resume)
    dist = Distributed.setup(recipe.run.device)
    use_bf16 = recipe.run.precision == "bf16" or (
        recipe.run.precision == "auto" and dist.device.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    if use_bf16 and dist.device.type != "cuda":
        raise ConfigError("run.precision=bf16 needs a GPU here; use auto or fp32 on CPU")

    # ---- model: frozen LLM and encoders, projectors (stage 2: the stage-1 projector must load) ----
    model = build_model(recipe.model, recipe.seed, verbose=dist.main)  # on the CPU
    model.train()  # projectors only: SpeechLLM keeps the frozen LLM and encoders in eval mode
    sharded = _sharded(recipe, dist)
    reuse_prefix = not sharded and not recipe.model.activation_checkpointing  # see ModelSection, _sharded
    if sharded:  # before the move: the device gets each layer's shard, never the whole LLM
        layers = dist.shard_decoder_layers(model.llm)
        if dist.main:
            logger.info("FSDP: %d decoder layers of the frozen LLM sharded over %d processes", layers, dist.world_size)
    model.to(dist.device)  # the rest: encoders, projectors, and what of the LLM is not sharded
    trainable = {name: p for name, p in model.projectors.named_parameters() if p.requires_grad}
    dist.broadcast(trainable.values())
    with dist.main_first():  # one process clears a stale cache and writes its cache.json, the others then read it
        caches = open_caches(recipe, model, writer_tag=str(dist.rank))
    # ---- data: weighted endless mix, duration buckets; each process gets its share of a global batch ----
    cuts, shares = training_cuts(recipe.data, recipe.seed)
    if dist.main:
        mix = ", ".join(f"{Path(m.manifest).name} {s:.1%}" for m, s in zip(recipe.data.train, shares, strict=True))
        logger.info("mix: %s", mix)
    sampler = training_sampler(cuts, recipe.data, recipe.seed, dist.world_size, dist.rank)

    # ---- resume: from the newest checkpoint, or from the alignment when it came first ----
    checkpoint = latest_checkpoint(out / "checkpoints") if resume is True else Checkpoint(Path(resume)) if resume else None
    if resume and checkpoint is None and not _alignment_started(recipe):
        raise RunFolderError(f"--resume: no checkpoint under {out / 'checkpoints'}")
    if dist.main:  # claimed once the run can start (a run that failed to start leaves no trace), before the
        start_run_folder(recipe, overwrite)  # alignment, which saves its state into it
    dist.barrier()
    log = TrainLog(out, enabled=dist.main)
    if recipe.align.steps and checkpoint is None:  # every process aligns alike (same seed, cache and cuts)
        was_training = model.training
        model.eval()
        _fill(model, caches, recipe)
        model.train(was_training)
        align_cuts = (cut for m in recipe.data.train for cut in manifest_cuts(m.manifest, m.mode)
                      if usable(cut, recipe.data))
        align_before_training(model, caches, align_cuts, recipe.align, recipe.seed, state=_align_state(out),
                              save=dist.main, on_record=lambda record: log.write("align", record.pop("step"), record))
        step0 = out / "exports" / "step-0"
        if dist.main and recipe.run.export_every and not step0.is_dir():  # the learning curve's first point
            save_model(model, step0)
    optimizer = torch.optim.AdamW(
        trainable.values(), lr=recipe.optim.lr, betas=recipe.optim.betas, eps=recipe.optim.eps,
        weight_decay=recipe.optim.weight_decay,
    )
    average = ProjectorAverage(trainable, recipe.average)

    # ---- resume: weights, optimizer, average, sampler position, RNGs ----
    step = 0
    if checkpoint is not None:
        state = checkpoint.state()
        load_projectors(model, checkpoint.projectors())
        optimizer.load_state_dict(state["optimizer"])
        average.load_state_dict(checkpoint.average())
        sampler.load_state_dict(state["sampler"])  # lhotse fast-forwards to the next unseen batch
        set_rng_state(state["rng"])
        step = state["step"]
        if dist.main:
            logger.info("resumed from %s at step %d", checkpoint.folder, step)
    batches = iter(sampler)
    progress = tqdm(total=recipe.run.max_steps, initial=step, disable=not (dist.main and recipe.run.progress), dynamic_ncols=True)
    window = torch.zeros(4, dtype=torch.float64)  # loss sum, correct, tokens, samples since the last log line
    window_start = time.perf_counter()
    skipped_cuts = skipped_steps = bad_in_a_row = 0
    while step < recipe.run.max_steps:
        lr = lr_at(step, recipe.optim, recipe.run.max_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # Draw the step's micro-batches first: the loss is normalized by the global batch's token count.
        micro = []
        for _ in range(recipe.optim.grad_accum):
            cuts_drawn = next(batches)
            items = load_items(cuts_drawn, model.roles, recipe.data.speed_perturb, salt=f"{recipe.seed}-{step}",
                               caches=caches, spec_augment=recipe.data.spec_augment)
            skipped_cuts += len(cuts_drawn) - len(items)  # bad audio, each logged by id
            if items:
                micro.extend(token_batches(model, items, caches, recipe.data.max_tokens_per_forward))
        tokens = [supervised_tokens(b) for b in micro]
        global_tokens = dist.sum(torch.tensor(float(sum(tokens)), dtype=torch.float64)).item()
        real = len(micro)
        if sharded:  # every process runs the sharded LLM equally often; the extra passes weigh nothing
            extra = dist.max(real) - real
            micro += [replace(micro[-1], inputs_embeds=micro[-1].inputs_embeds.detach())] * extra
            tokens += [0] * extra

        stats = torch.zeros(4, dtype=torch.float64)
        for index, (batch, count) in enumerate(zip(micro, tokens, strict=True)):
            if sharded and not batch.inputs_embeds.requires_grad:
                batch.inputs_embeds.requires_grad_(True)  # the backward must pass every sharded layer everywhere
            with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                result = model(batch, reuse_prefix=reuse_prefix)  # token-mean CE over this micro-batch's answers
            if result.loss.requires_grad:  # stage 2: sp items without known labels fill no paralinguistic slot
                (result.loss * (count / global_tokens)).backward()  # summed over micro-batches and processes: the global mean
            if index < real:
                stats += torch.tensor([result.loss.item() * count, result.correct, count, len(batch.labels)], dtype=torch.float64)
        dist.sum_gradients(trainable.values())
        stats = dist.sum(stats)  # the same on every process, as the summed gradients are: all decide alike
        if recipe.optim.clip_grad_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable.values(), recipe.optim.clip_grad_norm).item()
        else:
            grads = [p.grad.flatten() for p in trainable.values() if p.grad is not None]
            grad_norm = torch.cat(grads).norm().item() if grads else 0.0  # none: no micro-batch was left
        loss = stats[0].item() / max(stats[2].item(), 1)
        finite = global_tokens > 0 and math.isfinite(loss) and math.isfinite(grad_norm)
        if finite:  # a NaN or Inf update would make every weight NaN for good
            optimizer.step()
            bad_in_a_row = 0
        else:
            skipped_steps += 1
            bad_in_a_row += 1
            logger.warning("step %d: loss %s, gradient norm %s over %d supervised tokens: update skipped (%d in a row)",
                           step + 1, loss, grad_norm, int(global_tokens), bad_in_a_row)
            if bad_in_a_row >= recipe.optim.max_nonfinite_steps:
                raise RuntimeError(
                    f"stopping at step {step + 1}: {bad_in_a_row} steps in a row had a non-finite loss or gradient "
                    f"(or no supervised token); the weights are those of the last good step. Check the data "
                    f"(cut ids in the warnings above), lower optim.lr, or raise optim.max_nonfinite_steps"
                )
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if finite:
            average.update(step)
            window += stats
        progress.update(1)

        if step % recipe.run.log_every == 0 or step == recipe.run.max_steps:
            elapsed = time.perf_counter() - window_start
            values = {
                "loss": window[0].item() / max(window[2].item(), 1), "acc": window[1].item() / max(window[2].item(), 1),
                "lr": lr, "grad_norm": grad_norm, "samples_per_s": window[3].item() / elapsed,
                "samples": int(window[3].item()), "tokens": int(window[2].item()),
                "skipped_cuts": skipped_cuts, "skipped_steps": skipped_steps,
            }
            log.write("train", step, values)
            progress.set_postfix(loss=f"{values['loss']:.3f}", acc=f"{values['acc']:.3f}", lr=f"{lr:.2e}",
                                 samples_s=f"{values['samples_per_s']:.1f}")
            window.zero_()
            window_start = time.perf_counter()
        if recipe.data.valid and ((recipe.run.valid_every and step % recipe.run.valid_every == 0) or step == recipe.run.max_steps):
            log.write("valid", step, evaluate(model, recipe, caches, dist, use_bf16))
        if (recipe.run.save_every and step % recipe.run.save_every == 0) or step == recipe.run.max_steps:
            for cache in caches.values():
                cache.flush()
            if dist.main:
                state = {"step": step, "optimizer": optimizer.state_dict(), "sampler": sampler.state_dict(), "rng": rng_state()}
                Checkpoint.save(out / "checkpoints", step, projector_state(model), average.state_dict(), state,
                                keep=recipe.run.keep_checkpoints)
            dist.barrier()
        if dist.main and recipe.run.export_every and step % recipe.run.export_every == 0 and step < recipe.run.max_steps:
            _export_average(model, average, trainable, out / "exports" / f"step-{step}")
    progress.close()

    # ---- export: averaged projector weights in a folder azeros.models.load_model loads ----
    final = out / "final"
    if dist.main:
        average.copy_to(trainable)
        save_model(model, final)
        log.close()
        plot_curves(out / "log.jsonl", out / "curves.png")
        logger.info("exported %s; curves in %s", final, out / "curves.png")
    dist.barrier()
    dist.close()
    return final


def trained_model(recipe: TrainRecipe) -> Path:
    """A recipe's exported model: the one already in ``{output_dir}/final``, or trained now.

    An unfinished run of the recipe is continued from its newest checkpoint, or its alignment's saved state
    (refused if the recipe changed); a folder with neither starts over.
    """
    final = Path(recipe.output_dir) / "final"
    if (final / "model.safetensors").is_file():
        logger.info("%s exists: already trained", final)
        return final
    resume = latest_checkpoint(Path(recipe.output_dir) / "checkpoints") is not None or _alignment_started(recipe)
    return train(recipe, resume=resume, overwrite=not resume)


def _align_state(out: Path) -> Path:
    """Where a run's alignment saves its state (beside the training checkpoints, never taken for one)."""
    return out / "checkpoints" / "align"


def _alignment_started(recipe: TrainRecipe) -> bool:
    """Whether the recipe's run has an alignment state to continue from (saved before any training checkpoint)."""
    return bool(recipe.align.steps) and _align_state(Path(recipe.output_dir)).is_dir()


def model_folder(source: str | Path) -> Path:
    """A model folder as given, or a recipe's (``.yaml``) exported ``final`` folder, trained first when missing."""
    if not str(source).endswith((".yaml", ".yml")):
        return Path(source)
    return trained_model(load_recipe(source))

"""From generated manifests to model-ready batches.

* :func:`training_cuts`: every manifest repeated endlessly and multiplexed by ``weight x hours``.
* :func:`training_sampler`: lhotse's DynamicBucketingSampler over that mix (duration buckets; its
  ``state_dict`` is what makes a resumed run draw the very batches it would have drawn).
* :class:`TrainItem`: a cut with the exact context its target was generated from, laid out for this model.
* :func:`make_batch`: the items' conversations, encoder frames (from the encoder cache where it can) and
  answers, through the one batch builder (:func:`azeros.models.build_batch`).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.dataset import DynamicBucketingSampler

from azeros.audio import SAMPLE_RATE, AudioError
from azeros.data import ANY_DURATION, cut_audio, read_cuts, target_conversation, target_of
from azeros.models import EmbeddedBatch, EncodedAudio, SpeechLLM, build_batch, render
from azeros.text import IGNORE_INDEX, LabelError, Message, RenderedChat
from azeros.training.cache import EncoderCache
from azeros.training.recipe import DataSection

__all__ = [
    "TrainItem",
    "at_model_rate",
    "encoded_audio",
    "load_items",
    "make_batch",
    "manifest_cuts",
    "manifest_hours",
    "render_item",
    "supervised_tokens",
    "token_batches",
    "training_cuts",
    "training_sampler",
    "usable",
]

logger = logging.getLogger(__name__)


class _Manifest:
    """A manifest as a re-iterable lazy source of cuts (each pass reads the file again)."""

    def __init__(self, path: str | Path, mode: str | None) -> None:
        self.path = path
        self.mode = mode

    def __iter__(self) -> Iterator[Cut]:
        return read_cuts(self.path, mode=self.mode)


def manifest_cuts(path: str | Path, mode: str | None = None) -> CutSet:
    """A lazy CutSet over a generated manifest, read through the data layer (reference files load too).

    Args:
        path: the manifest.
        mode: the mode of targets that do not store one (see :func:`azeros.data.read_cuts`).
    """
    return CutSet(_Manifest(path, mode))


def manifest_hours(path: str | Path) -> float:
    """Total hours of a manifest (one pass over its lines)."""
    return sum(cut.duration for cut in read_cuts(path)) / 3600.0


def usable(cut: Cut, data: DataSection) -> bool:
    """Whether a cut trains: it has a generated target and a duration within the recipe's bounds."""
    return data.min_seconds <= cut.duration <= data.max_seconds and target_of(cut) is not None


def training_cuts(data: DataSection, seed: int) -> tuple[CutSet, list[float]]:
    """The endless weighted mix of the training manifests.

    Args:
        data: the recipe's data section.
        seed: seeds the multiplexer.

    Returns:
        ``(cuts, shares)``: the lazy infinite CutSet and each manifest's share of the draws.
    """
    hours = [m.hours if m.hours is not None else manifest_hours(m.manifest) for m in data.train]
    weights = [m.weight * h for m, h in zip(data.train, hours, strict=True)]  # the paper's weight x hours
    if not any(w > 0 for w in weights):
        raise ValueError(f"data.train: every manifest has zero weight x hours ({hours} h)")
    # preserve_id: a cut keeps its id on every pass, so the encoder cache finds it again.
    keep = functools.partial(usable, data=data)
    sources = [manifest_cuts(m.manifest, m.mode).filter(keep).repeat(preserve_id=True) for m in data.train]
    cuts = sources[0] if len(sources) == 1 else CutSet.mux(*sources, weights=weights, seed=seed)
    return cuts, [w / sum(weights) for w in weights]


def training_sampler(cuts: CutSet, data: DataSection, seed: int, world_size: int, rank: int) -> DynamicBucketingSampler:
    """Duration-bucketed batches of at most ``max_duration`` seconds / ``max_cuts`` cuts per process.

    With ``world_size`` processes, process ``rank`` gets every ``world_size``-th batch of the one
    sequence all processes draw, so the global batch is the same whatever the process count.
    """
    return DynamicBucketingSampler(
        cuts, max_duration=data.max_duration, max_cuts=data.max_cuts, num_buckets=data.num_buckets,
        shuffle=True, drop_last=True, buffer_size=data.buffer_size,
        num_cuts_for_bins_estimate=min(data.buffer_size, 10000), world_size=world_size, rank=rank, seed=seed,
        sync_buckets=False,  # buckets drawn in the same sequence for any process count
    )


@dataclass
class TrainItem:
    """One utterance of a batch: its (maybe perturbed) 16 kHz cut and the conversation to supervise.

    Attributes:
        cut: the cut, resampled to 16 kHz and possibly speed-perturbed.
        messages: the context the target was generated from, with the audio slots this model hears every
            utterance in (:func:`azeros.text.heard_parts`).
        answer: the target response.
        finished: whether the target ended by itself (only then is the end-of-turn token supervised).
        cacheable: the audio is unaugmented, so its encoder output may come from the cache.
        no_system_turn: the target was written with no system turn at all (see :class:`azeros.data.Target`).
        augment_seed: the seed of its fbank's SpecAugment (``None``: none).
    """

    cut: Cut
    messages: list[Message]
    answer: str
    finished: bool
    cacheable: bool
    no_system_turn: bool = False
    augment_seed: int | None = None

    @classmethod
    def from_cut(cls, cut: Cut, roles: Sequence[str], speed: float = 1.0, augment_seed: int | None = None) -> TrainItem:
        messages, target = target_conversation(cut, encoders=roles)
        cut = at_model_rate(cut)
        if speed != 1.0:
            cut = cut.perturb_speed(speed)
        return cls(cut, messages, target.response, target.finish_reason == "stop",
                   cacheable=speed == 1.0 and augment_seed is None, no_system_turn=target.no_system_turn,
                   augment_seed=augment_seed)

    @property
    def num_samples(self) -> int:
        return int(self.cut.num_samples)

    @cached_property
    def wave(self) -> np.ndarray:
        """The mono float32 waveform, loaded and checked on first use (never, when the cache serves every
        encoder); raises :class:`azeros.audio.AudioError` for audio that must not train."""
        return cut_audio(self.cut, ANY_DURATION)  # the recipe's bounds chose the cut's duration

    def served_by(self, caches: Mapping[str, EncoderCache], roles: Sequence[str]) -> bool:
        """Whether the caches hold this item's frames for every encoder, so its audio is never read."""
        return self.cacheable and all(role in caches and self.cut in caches[role] for role in roles)


def at_model_rate(cut: Cut) -> Cut:
    """The cut as the encoders read it: resampled to 16 kHz when it is not (frame counts follow from it)."""
    return cut if cut.sampling_rate == SAMPLE_RATE else cut.resample(SAMPLE_RATE)


def load_items(
    cuts: Iterable[Cut], roles: Sequence[str], speeds: Sequence[float] = (), salt: str = "",
    caches: Mapping[str, EncoderCache] | None = None, spec_augment: float = 0.0,
) -> list[TrainItem]:
    """Batch items, each with a speed factor drawn from ``speeds`` (none when empty), and SpecAugmented with
    probability ``spec_augment``.

    The draws depend only on ``salt`` (seed and step) and the cut id, so a resumed run, or the same
    global batch split over another number of processes, perturbs every cut the same way. The audio the
    encoders will read is loaded and checked here, and its labels (:func:`azeros.text.speaker_meta`'s rule):
    a cut with a label that would rewrite the prompt, or with bad audio (empty, non-finite, silent,
    unreadable) is left out and logged with its id and reason, so it can neither poison the encoder cache
    nor the projectors. Frames in the cache came from audio checked when they were computed.

    Args:
        cuts: the cuts of a batch.
        roles: the model's encoder roles.
        speeds: speed factors to draw from.
        salt: seeds the draw.
        caches: encoder caches by role; cuts they serve entirely are not read.
        spec_augment: the probability that an item's fbank is SpecAugmented (with a seed of its own).

    Returns:
        The items of the cuts with usable audio (fewer than ``cuts`` when some were left out).
    """
    items = []
    for cut in cuts:
        draw = random.Random(f"{salt}-{cut.id}")
        speed = draw.choice(speeds) if speeds else 1.0
        augment_seed = draw.getrandbits(32) if spec_augment and draw.random() < spec_augment else None
        try:
            item = TrainItem.from_cut(cut, roles, speed, augment_seed)
        except LabelError as error:  # a label that would rewrite the prompt never reaches the projectors
            logger.warning("skipping cut %s: %s", cut.id, error)
            continue
        if not item.served_by(caches or {}, roles):
            try:
                item.wave  # noqa: B018 (loads and checks the audio now, while the cut can still be left out)
            except AudioError as error:
                logger.warning("skipping cut %s: %s", cut.id, error.reason)
                continue
        items.append(item)
    return items


def encoded_audio(model: SpeechLLM, items: Sequence[TrainItem], caches: Mapping[str, EncoderCache]) -> EncodedAudio:
    """The items' encoder frames: cached frames where allowed, the encoder elsewhere (each item has one audio)."""
    rows: list[dict[str, torch.Tensor]] = [{} for _ in items]  # per item, {role: frames [t, d]}
    for role in model.roles:
        cache = caches.get(role)
        to_encode = []
        for i, item in enumerate(items):
            if cache is not None and item.cacheable and item.cut in cache:
                rows[i][role] = cache.get(item.cut)
            else:
                to_encode.append(i)
        if to_encode:
            waves = [items[i].wave for i in to_encode]
            seeds = [items[i].augment_seed for i in to_encode]
            augmented = {"augment_seeds": seeds} if any(s is not None for s in seeds) else {}  # zipformer only
            frames, lengths = model.encoders[role](waves, **augmented)  # [m, t, d]
            for row, i in enumerate(to_encode):
                rows[i][role] = frames[row, : int(lengths[row])]
                if cache is not None and items[i].cacheable:
                    cache.put(items[i].cut, rows[i][role])
    return EncodedAudio.from_rows([[item.num_samples] for item in items], rows)


def make_batch(
    model: SpeechLLM, items: Sequence[TrainItem], caches: Mapping[str, EncoderCache],
    chats: Sequence[RenderedChat] | None = None,
) -> EmbeddedBatch:
    """A training batch (right-padded, with labels) through the one batch builder.

    Args:
        model: the SpeechLLM.
        items: the batch.
        caches: encoder caches by role (empty: always run the encoders).
        chats: the items already rendered (``None``: render them here).

    Returns:
        The batch with projected audio scattered into each conversation's audio positions.
    """
    chats = chats or [render_item(model, item) for item in items]
    return build_batch(model, [item.messages for item in items], encoded_audio(model, items, caches), chats=chats)


def render_item(model: SpeechLLM, item: TrainItem) -> RenderedChat:
    """The item's conversation as tokens, with its audio positions and answer labels.

    Raises:
        ValueError: when the target had no system turn but the model's chat template adds one (training
            would show a context the target never came from).
    """
    if item.no_system_turn and model.renderer.adds_default_system:
        raise ValueError(
            f"cut {item.cut.id}: its target was generated with no system turn (the reference's ChatML), but "
            "this LLM's chat template adds a default system prompt; set the model's chat_template (e.g. "
            "`chat_template: chatml`) so training shows the context the target came from"
        )
    return render(model, item.messages, [item.num_samples], item.answer, item.finished)


def token_batches(
    model: SpeechLLM, items: Sequence[TrainItem], caches: Mapping[str, EncoderCache], max_tokens: int | None
) -> list[EmbeddedBatch]:
    """Split a batch into micro-batches of similar length, each at most ``max_tokens`` padded tokens.

    Duration buckets keep the audio of a batch alike, but not the answers, which are most of a sequence:
    padding every row to the longest answer can double the work. Sorted by rendered length and cut at a
    token budget, the rows of a micro-batch pad little. The loss is normalized by the tokens of the whole
    global batch, so the update is the same however the batch is split.

    Args:
        model: the SpeechLLM.
        items: the sampler's batch.
        caches: encoder caches by role.
        max_tokens: the padded-token budget of one forward pass; ``None`` keeps the batch whole.

    Returns:
        The micro-batches.
    """
    chats = [render_item(model, item) for item in items]
    if max_tokens is None:
        return [make_batch(model, items, caches, chats)]
    order = sorted(range(len(items)), key=lambda i: len(chats[i].input_ids))
    groups: list[list[int]] = [[]]
    for i in order:  # ascending length: the newest row is the longest of its group
        if groups[-1] and (len(groups[-1]) + 1) * len(chats[i].input_ids) > max_tokens:
            groups.append([])
        groups[-1].append(i)
    return [make_batch(model, [items[i] for i in g], caches, [chats[i] for i in g]) for g in groups]


def supervised_tokens(batch: EmbeddedBatch) -> int:
    """Next-token targets the loss counts: answer tokens and end-of-turn tokens."""
    return int((batch.labels[:, 1:] != IGNORE_INDEX).sum())

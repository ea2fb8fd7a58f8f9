"""Stage 0 of stage 1: the semantic projector aligned to the frozen LLM's own token embeddings, by CTC.

Through the frozen LLM, a projector trained from random weights first learns what *kind* of utterance it
hears (a question about a capital, a request for a recipe) long before it learns *which* words were said:
every step pays for the LLM's forward and input-gradient passes, and the answers carry the words only
indirectly. This stage teaches the words directly and cheaply, with no LLM pass at all: each projected
position is scored against the LLM's own input embeddings of the transcript's tokens (cosine similarity,
scaled), plus a blank, and CTC aligns the positions to the token sequence. A second term keeps the
outputs at the embeddings' typical norm, so the LLM reads them the way it reads its own token embeddings.
Only the vocabulary of the training transcripts is scored, so a step costs a product of
``[positions, vocabulary]``, not the LLM. The SIFT/TSIT training that follows starts from a projector
that already says the words; nothing of this stage reaches the model except the projector's weights.

The frames come from the encoder cache (filled first, as ``azeros cache`` does) and are held in memory
(about 150 KB per utterance for Whisper tiny), the transcripts from the training manifests. An alignment of
thousands of steps takes hours on a CPU: every ``save_every`` steps and at its end it saves its state
(weights, optimizer, the batch draw's RNG, its log records) to a folder, written whole or not at all, and an
alignment started on that folder continues from it exactly.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from azeros.data import Utterance
from azeros.models import SpeechLLM
from azeros.text import edit_distance
from azeros.training.cache import EncoderCache
from azeros.training.checkpoint import python_random_state, written_whole
from azeros.training.data import at_model_rate
from azeros.training.recipe import AlignSection

__all__ = ["AlignExample", "align_before_training", "align_projector", "alignment_examples"]

logger = logging.getLogger(__name__)

# training utterances whose heard token error rate each log record carries (a few seconds of a long run)
PROBE_UTTERANCES = 64


@dataclass(frozen=True)
class AlignExample:
    """One utterance: its encoder frames ``[t, d]``, its transcript's LLM token ids and its cut id."""

    frames: torch.Tensor
    token_ids: tuple[int, ...]
    cut_id: str = ""


def alignment_examples(model: SpeechLLM, cuts: Iterable, cache: EncoderCache) -> list[AlignExample]:
    """The cached frames and tokenized transcript of every distinct cut (those the cache lacks are skipped)."""
    examples, seen = [], set()
    for cut in cuts:
        if cut.id in seen or cut not in cache:
            continue
        seen.add(cut.id)
        ids = model.tokenizer(Utterance.from_cut(cut).transcript, add_special_tokens=False).input_ids
        if ids:
            examples.append(AlignExample(cache.get(at_model_rate(cut)), tuple(ids), cut.id))
    return examples


def align_projector(model: SpeechLLM, role: str, examples: list[AlignExample], section: AlignSection,
                    seed: int, state: Path | None = None, save: bool = True,
                    on_record: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Train ``model.projectors[role]`` by CTC onto the LLM's input embeddings of each transcript.

    Args:
        model: the SpeechLLM (its LLM stays frozen and is never run).
        role: the projector to align (``semantic``).
        examples: frames and token ids (:func:`alignment_examples`).
        section: steps, batch size, learning rate, logit scale, norm weight.
        seed: seeds the batch draws.
        state: the folder of the alignment's saved state: continued from when it holds one (a finished
            alignment returns its records at once), written every ``section.save_every`` steps and at the end.
        save: write ``state`` (one process of several does; every process reads it).
        on_record: called with each log record as it is made (a continued alignment makes again the records
            of the steps after its last save, as a resumed training run does).

    Returns:
        Log records (step, CTC loss, mean output norm, ``heard_ter``, steps skipped so far) every 50 steps.
        ``heard_ter`` is the token error rate of what the projector hears (greedy CTC, no augmentation) on a
        fixed sample of the training utterances: near the rate on held-out speech, the projector is too small
        or too briefly trained for its data (more data will not help); far below it, it fits its own texts.
        A step whose loss or gradient is not finite is skipped (logged with its cut ids): one update with it
        would make every weight of the projector NaN for good.

    Raises:
        ValueError: when there are no examples.
    """
    if not examples:
        raise ValueError("align: no utterance has cached frames and a transcript (fill the cache first)")
    projector = model.projectors[role]
    embeddings = model.llm.get_input_embeddings().weight.detach().float()  # [V, H]
    vocab = sorted({i for example in examples for i in example.token_ids})
    column = {token: i + 1 for i, token in enumerate(vocab)}  # 0: blank
    targets = nn.functional.normalize(embeddings[vocab], dim=-1)  # [v, H]
    typical_norm = embeddings.norm(dim=-1).mean().item()
    # a compressing projector keeps its blank (it decides what the LLM reads); otherwise it lives here only
    blank = projector.blank if projector.blank is not None else nn.Parameter(
        torch.zeros(embeddings.shape[1]).normal_(0, 0.02, generator=torch.Generator().manual_seed(seed)))
    trained = list(projector.parameters()) + ([] if blank is projector.blank else [blank])
    optimizer = torch.optim.AdamW(trained, lr=section.lr, weight_decay=0.0)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    draw = random.Random(seed)
    batches = _LengthBuckets(examples, section.length_buckets)
    probe = random.Random(seed).sample(examples, min(PROBE_UTTERANCES, len(examples)))
    logger.info("align: %d utterances, %d tokens, %d steps of %d", len(examples), len(vocab), section.steps,
                section.batch_size)
    records, skipped, done = [], 0, 0
    if state is not None and (state / _STATE_FILE).is_file():
        done, records, skipped = _load_state(state, projector, blank, optimizer, draw)
        logger.info("align: continuing from step %d (%s)", done, state)
    for step in range(done + 1, section.steps + 1):
        warm = min(1.0, step / max(1, section.steps // 30))
        for group in optimizer.param_groups:
            group["lr"] = section.lr * warm * 0.5 * (1 + math.cos(math.pi * step / section.steps))
        batch = batches.draw(section.batch_size, draw)
        lengths = torch.tensor([example.frames.shape[0] for example in batch])
        frames = nn.utils.rnn.pad_sequence([example.frames for example in batch], batch_first=True)  # [b, t, d]
        frames = _augment(frames, lengths, section, draw)
        projected, positions = projector(frames, lengths)  # [b, t/k, H], [b]
        logits = _ctc_logits(projected, blank, targets, section.scale)  # [b, t/k, v+1]
        labels = torch.tensor([column[i] for example in batch for i in example.token_ids])
        label_lengths = torch.tensor([len(example.token_ids) for example in batch])
        valid = torch.arange(projected.shape[1])[None, :] < positions[:, None]  # [b, t/k]
        norms = projected.norm(dim=-1)[valid]
        loss_ctc = ctc(logits.log_softmax(-1).transpose(0, 1), labels, positions, label_lengths)
        loss = loss_ctc + section.norm_weight * ((norms - typical_norm) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(projector.parameters(), 1.0)
        if torch.isfinite(loss) and torch.isfinite(grad_norm):
            optimizer.step()
        else:
            skipped += 1
            logger.warning("align step %d: loss %s, gradient norm %s: update skipped (cuts %s)", step, loss.item(),
                           grad_norm.item(), ", ".join(example.cut_id for example in batch))
        if step % 50 == 0 or step == section.steps:
            record = {"step": step, "ctc": loss_ctc.item(), "norm": norms.mean().item(), "target_norm": typical_norm,
                      "heard_ter": _heard_token_error_rate(projector, blank, targets, vocab, probe, section.scale),
                      "skipped_steps": skipped}
            records.append(record)
            logger.info("align: %s", record)
            if on_record is not None:
                on_record(dict(record))
        if state is not None and save and (step % section.save_every == 0 or step == section.steps):
            _save_state(state, step, projector, blank, optimizer, draw, records, skipped)
    projector.zero_grad(set_to_none=True)
    return records


_STATE_FILE = "state.pt"


def _save_state(folder: Path, step: int, projector: nn.Module, blank: nn.Parameter, optimizer: torch.optim.Optimizer,
                draw: random.Random, records: list[dict[str, float]], skipped: int) -> None:
    """Write the alignment's state to ``folder``, whole or not at all."""
    with written_whole(folder) as staging:
        torch.save({"step": step, "projector": projector.state_dict(), "blank": blank.detach().clone(),
                    "optimizer": optimizer.state_dict(), "draw": draw.getstate(), "records": records,
                    "skipped": skipped}, staging / _STATE_FILE)


def _load_state(folder: Path, projector: nn.Module, blank: nn.Parameter, optimizer: torch.optim.Optimizer,
                draw: random.Random) -> tuple[int, list[dict[str, Any]], int]:
    """Restore what :func:`_save_state` wrote; returns the steps done, the records so far and the steps skipped."""
    saved = torch.load(folder / _STATE_FILE, map_location="cpu", weights_only=True)
    projector.load_state_dict(saved["projector"])
    with torch.no_grad():
        blank.copy_(saved["blank"])  # the projector's own blank (just loaded) or the one aligning alone uses
    optimizer.load_state_dict(saved["optimizer"])
    draw.setstate(python_random_state(saved["draw"]))
    return saved["step"], saved["records"], saved["skipped"]


def _ctc_logits(projected: torch.Tensor, blank: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    """``[b, n, v+1]`` scaled cosines of projected positions ``[b, n, H]`` to the blank (column 0) and to
    the unit token embeddings ``targets`` ``[v, H]``."""
    unit = nn.functional.normalize(projected, dim=-1)
    return scale * torch.cat([unit @ nn.functional.normalize(blank, dim=0)[:, None], unit @ targets.T], dim=-1)


def _greedy_tokens(columns: list[int], vocab: list[int]) -> list[int]:
    """Greedy CTC read of one utterance's best columns (0: blank; ``c`` is ``vocab[c - 1]``): runs of a
    column collapse to one, blanks drop."""
    return [vocab[column - 1] for i, column in enumerate(columns) if column and (i == 0 or column != columns[i - 1])]


def _heard_token_error_rate(projector: nn.Module, blank: torch.Tensor, targets: torch.Tensor, vocab: list[int],
                            probe: list[AlignExample], scale: float) -> float:
    """Token errors per token said of what ``projector`` hears on ``probe`` (unaugmented)."""
    errors = said = 0
    with torch.no_grad():
        for start in range(0, len(probe), 32):
            chunk = probe[start : start + 32]
            lengths = torch.tensor([example.frames.shape[0] for example in chunk])
            frames = nn.utils.rnn.pad_sequence([example.frames for example in chunk], batch_first=True)  # [b, t, d]
            projected, positions = projector(frames, lengths)  # [b, t/k, H], [b]
            best = _ctc_logits(projected, blank, targets, scale).argmax(-1)  # [b, t/k]
            for example, row, count in zip(chunk, best.tolist(), positions.tolist(), strict=True):
                errors += edit_distance(example.token_ids, _greedy_tokens(row[:count], vocab))
                said += len(example.token_ids)
    return round(errors / max(1, said), 4)


class _LengthBuckets:
    """``examples`` in ``count`` groups of consecutive frame lengths, as equal in size as can be; a batch is drawn
    from one group, chosen in proportion to its size, so each utterance is drawn as often as with one group."""

    def __init__(self, examples: list[AlignExample], count: int) -> None:
        if count <= 1:
            self.groups = [examples]
        else:
            ordered = sorted(examples, key=lambda example: example.frames.shape[0])
            size = -(-len(ordered) // count)
            self.groups = [ordered[start : start + size] for start in range(0, len(ordered), size)]
        self.weights = [len(group) for group in self.groups]

    def draw(self, size: int, rng: random.Random) -> list[AlignExample]:
        """``size`` distinct examples of one group (one group: no draw of a group, as before groups existed)."""
        group = self.groups[0] if len(self.groups) == 1 else rng.choices(self.groups, weights=self.weights)[0]
        return rng.sample(group, min(size, len(group)))


def _augment(frames: torch.Tensor, lengths: torch.Tensor, section: AlignSection, draw: random.Random) -> torch.Tensor:
    """Frames ``[b, t, d]`` with ``section.time_masks`` spans zeroed per utterance and ``frame_dropout`` applied."""
    if section.time_masks:
        frames = frames.clone()
        for row, length in enumerate(lengths.tolist()):
            for _ in range(section.time_masks):
                width = draw.randint(0, max(1, length // 20))
                start = draw.randint(0, max(0, length - width))
                frames[row, start : start + width] = 0.0
    if section.frame_dropout:
        generator = torch.Generator().manual_seed(draw.getrandbits(62))
        keep = torch.rand(frames.shape, generator=generator) >= section.frame_dropout
        frames = frames * keep / (1.0 - section.frame_dropout)
    return frames


def align_before_training(model: SpeechLLM, caches: Mapping[str, EncoderCache], cuts: Iterable,
                          section: AlignSection, seed: int, state: Path | None = None, save: bool = True,
                          on_record: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Align the trainable semantic projector on ``cuts`` (see the module docstring; ``state``, ``save`` and
    ``on_record`` as :func:`align_projector`'s)."""
    if "semantic" not in caches:
        raise ValueError("align needs the encoder cache (cache.enabled: true)")
    return align_projector(model, "semantic", alignment_examples(model, cuts, caches["semantic"]), section, seed,
                           state, save, on_record)

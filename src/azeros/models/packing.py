"""What makes a teacher-forced pass cheap without changing its loss: the shared prefix's keys and values
computed once, and rows packed end to end instead of padded.

Every training sequence of a recipe opens the same way (the chat template's system turn and the start of
the user turn, up to the audio); :class:`PrefixStates` keeps the frozen LLM's keys and values there. After
that prefix, rows differ in length far more than they did, and padding would be a third of the work:
:func:`packed_inputs` places them several to a row, each attending causally to itself and to the prefix.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel

from azeros.llm import cache_keyword
from azeros.text import IGNORE_INDEX, RenderedChat

__all__ = ["PrefixStates", "next_tokens", "packed_inputs", "shared_prefix"]


class PrefixStates:
    """A frozen LLM's keys and values of token prefixes, computed once and reused by every pass that opens with them.

    Recomputing them in every row of every step (forward and backward) is waste: about a quarter of the tokens
    of a short SIFT_s conversation with SmolLM2's default system prompt. The few prefixes a recipe has are
    kept, least recently used dropped first.

    Args:
        llm: the frozen causal LM.
        capacity: how many prefixes to keep.
    """

    def __init__(self, llm: PreTrainedModel, capacity: int = 16) -> None:
        self.llm = llm
        self.capacity = capacity
        self._states: OrderedDict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def cache_for(self, prefix: tuple[int, ...], rows: int, like: torch.Tensor) -> DynamicCache:
        """A new cache holding ``prefix``'s states for ``rows`` rows, to be extended by one pass.

        Args:
            prefix: the token ids.
            rows: the batch size of the pass.
            like: the pass's input embeddings: states are kept per dtype, device and autocast setting.
        """
        key = (prefix, like.dtype, like.device, torch.is_autocast_enabled(like.device.type))
        states = self._states.pop(key, None)
        if states is None:
            decoder = self.llm.get_decoder()
            with torch.no_grad():
                out = decoder(input_ids=torch.tensor([prefix], device=like.device), use_cache=True)
            cache = out["cache"] if "cache" in out else out["past_key_values"]  # transformers 5 renamed it
            states = [(layer.keys, layer.values) for layer in cache.layers]  # [1, kv heads, P, d] each
        self._states[key] = states
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)
        # expand() shares the stored tensors; the pass's first append copies them into its own rows.
        rows_states = [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in states]
        return DynamicCache(rows_states, config=self.llm.config)


def shared_prefix(chats: Sequence[RenderedChat]) -> tuple[int, ...]:
    """The longest token prefix that every chat opens with, holding no audio and predicting no supervised token."""
    heads = []
    for chat in chats:
        end = len(chat.input_ids) - 1  # a pass needs at least one position of its own
        if chat.audio_spans:
            end = min(end, min(span.start for span in chat.audio_spans))
        if chat.labels is not None:
            supervised = next((i for i, label in enumerate(chat.labels) if label != IGNORE_INDEX), end + 1)
            end = min(end, supervised - 1)  # position i predicts token i + 1
        heads.append(list(chat.input_ids[: max(end, 0)]))
    return tuple(os.path.commonprefix(heads))  # element-wise on lists


def next_tokens(labels: torch.Tensor) -> torch.Tensor:
    """``[b, L]`` labels -> ``[b, L]`` the token each position predicts (the next label; none for the last)."""
    return nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def packed_inputs(
    llm: PreTrainedModel,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    prefix: tuple[int, ...],
    prefix_states: PrefixStates | None,
) -> tuple[dict[str, Any], torch.Tensor]:
    """The LLM's inputs for a pass over a right-padded batch after its shared prefix, rows packed end to end.

    Each row keeps its positions from the end of the shared prefix up to the one that predicts its last
    supervised token (the positions after it predict nothing). Rows are placed first-fit, longest first,
    into packed rows (see :func:`_pack`); each attends to the prefix and, causally, to itself only, at
    the positions it has unpacked.

    Args:
        llm: the frozen LLM (its attention implementation decides the mask's form).
        inputs_embeds: ``[b, L, H]``.
        attention_mask: ``[b, L]``.
        labels: ``[b, L]``.
        prefix: the token ids every row opens with.
        prefix_states: where the prefix's keys and values come from; ``None``: the pass starts at position 0.

    Returns:
        The keyword arguments of the LLM's forward (embeddings ``[r, C, H]``, mask, positions, prefix
        cache) and the token each position predicts ``[r, C]`` (``IGNORE_INDEX`` where unsupervised), for
        the ``r <= b`` packed rows.
    """
    skip = len(prefix) if prefix_states is not None else 0
    embeds = inputs_embeds[:, skip:]  # [b, L', H]
    targets = next_tokens(labels)[:, skip:]  # [b, L']
    b, width = targets.shape
    supervised = targets != IGNORE_INDEX
    last = (supervised * torch.arange(1, width + 1, device=targets.device)).amax(1)  # [b]: 1 + last predicting position
    real = attention_mask[:, skip:].sum(1)  # right padding: the first real[i] positions are tokens
    lengths = torch.where(supervised.any(1), last, real).tolist()
    capacity, rows = _pack(lengths)
    device = embeds.device
    index = torch.zeros(len(rows), capacity, dtype=torch.long)  # into the flattened [b * L'] positions
    segment = torch.full((len(rows), capacity), -1, dtype=torch.long)
    positions = torch.zeros(len(rows), capacity, dtype=torch.long)
    for r, members in enumerate(rows):
        filled = 0
        for i in members:
            n = lengths[i]
            index[r, filled : filled + n] = torch.arange(i * width, i * width + n)
            segment[r, filled : filled + n] = i
            positions[r, filled : filled + n] = torch.arange(skip, skip + n)
            filled += n
    valid = segment >= 0  # [r, C]
    same = segment[:, :, None] == segment[:, None, :]  # [r, C, C]
    causal = torch.ones(capacity, capacity, dtype=torch.bool).tril()
    # Padding positions attend to themselves, never to others; nothing attends to them.
    attend = (same & causal & valid[:, None, :]) | torch.eye(capacity, dtype=torch.bool)
    prefix_mask = torch.ones(len(rows), capacity, skip, dtype=torch.bool)
    mask = torch.cat([prefix_mask, attend], dim=2)[:, None].to(device)  # [r, 1, C, skip + C]: True attends
    if llm.config._attn_implementation == "eager":  # eager attention adds its mask to the scores
        mask = torch.zeros(mask.shape, dtype=embeds.dtype, device=device).masked_fill(~mask, torch.finfo(embeds.dtype).min)
    flat_index = index.to(device)
    packed = embeds.reshape(b * width, -1)[flat_index]  # [r, C, H]
    packed_targets = targets.reshape(-1)[flat_index].masked_fill(~valid.to(device), IGNORE_INDEX)
    inputs = {"inputs_embeds": packed, "attention_mask": mask, "position_ids": positions.to(device),
              "use_cache": bool(skip)}
    if skip:
        inputs[cache_keyword(llm)] = prefix_states.cache_for(prefix, len(rows), packed)
    return inputs, packed_targets


def _pack(lengths: Sequence[int]) -> tuple[int, list[list[int]]]:
    """Packed-row length and rows: of 1 to 2 times the longest sequence, the length needing fewest positions.

    Rows as long as the longest sequence leave every sequence longer than half of it alone in its row; a
    little more room pairs them. Ties go to the shorter rows, since attention grows with row length.
    """
    longest = max(lengths)
    best: tuple[int, list[list[int]]] | None = None
    for capacity in sorted({int(longest * factor) for factor in (1, 1.25, 1.5, 1.75, 2)}):
        rows = _first_fit(lengths, capacity)
        if best is None or len(rows) * capacity < len(best[1]) * best[0]:
            best = (capacity, rows)
    return best


def _first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bin packing, first fit in decreasing length: the rows placed in each packed row of ``capacity``."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fits = next((r for r, free in enumerate(room) if lengths[i] <= free), None)
        if fits is None:
            rows.append([])
            room.append(capacity)
            fits = len(rows) - 1
        rows[fits].append(i)
        room[fits] -= lengths[i]
    return rows

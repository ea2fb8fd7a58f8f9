"""Local generation with transformers: continuous batching of prompts sorted by length.

Padded ``generate`` on fixed batches in input order (the reference's way) wastes most of its work: every
row of a batch runs until the longest answer ends, and short prompts are padded to the longest one. Here:

* requests are read in windows and sorted by prompt length, so a batch's prompts need little padding;
* each step decodes only the rows still running: a row leaves the batch the moment it ends (end of turn,
  eos, the length limit, or a degenerate output) and its result is yielded at once; the last rows move into
  the slots of ended ones, so the key/value cache is compacted by copying a few rows, not all of it;
* freed slots are refilled with the next prompts, whose key/value cache is joined to the running one
  (left-padded and masked), so the batch stays full until the input runs out.

Greedy decoding is the same computation as ``generate`` row by row, so answers agree with it (up to the
rounding of differently padded batches).
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from azeros.llm import GrowingCache, cache_keyword, default_repetition_penalty, load_llm, penalize_seen, seen_mask
from azeros.selfgen.base import Request, Result
from azeros.text import PromptRenderer

__all__ = ["TransformersBackend"]

logger = logging.getLogger(__name__)


@dataclass
class _Row:
    """One answer being written."""

    key: str
    token_ids: list[int] = field(default_factory=list)
    run: int = 0  # length of the current run of one repeated token


def _fill_order(alive: list[int], count: int) -> list[int]:
    """The rows to keep, ``alive`` (ascending, of ``count``), arranged so that few move: the slots of ended
    rows among the first ``len(alive)`` take the live rows beyond them; every other row stays in place."""
    kept = len(alive)
    order = list(range(kept))
    ended_slots = sorted(set(order) - set(alive))
    for slot, source in zip(ended_slots, (i for i in alive if i >= kept), strict=True):
        order[slot] = source
    return order


class TransformersBackend:
    """Generate answers with a local transformers causal LM (greedy).

    Args:
        model: a hub id, a local folder, a ``.gguf`` file or an embedded alias.
        dtype: ``"auto"`` (bf16 on a GPU that has it, fp32 elsewhere), ``"bf16"``, ``"fp32"``, ...
        device: ``"cuda"``, ``"cpu"``...; ``None`` picks a GPU when there is one.
        max_new_tokens: the length limit of an answer (answers cut there get ``finish_reason="length"``).
        max_batch: the most rows decoded together.
        max_prefill_tokens: the most prompt tokens (rows x padded length) prefilled in one call.
        repeat_limit: an answer with this many copies of one token back to back is degenerate; it is
            stopped there and reported.
        repetition_penalty: rescales the logits of tokens already seen (prompt and answer; see
            :mod:`azeros.llm.repetition`); ``None`` takes the LLM's own generation config.
        llm: an already loaded model (tests); ``tokenizer`` must come with it.
        tokenizer: its tokenizer.
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        device: str | None = None,
        max_new_tokens: int = 1024,
        max_batch: int = 64,
        max_prefill_tokens: int = 16384,
        repeat_limit: int = 64,
        repetition_penalty: float | None = None,
        chat_template: str | None = None,
        llm: Any = None,
        tokenizer: Any = None,
    ) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if llm is None:
            llm, tokenizer = load_llm(model, dtype, self.device)
        self.llm = llm.to(self.device).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.renderer = PromptRenderer(tokenizer, chat_template=chat_template)
        self.model_name = model
        self.max_new_tokens = max_new_tokens
        self.max_batch = max_batch
        self.max_prefill_tokens = max_prefill_tokens
        self.repeat_limit = repeat_limit
        self.repetition_penalty = (default_repetition_penalty(self.llm) if repetition_penalty is None
                                   else float(repetition_penalty))
        logger.info("%s: repetition_penalty %s", model, self.repetition_penalty)
        self.settings = {"model": model, "dtype": str(self.llm.dtype).removeprefix("torch."),
                         "max_new_tokens": max_new_tokens, "repeat_limit": repeat_limit,
                         "repetition_penalty": self.repetition_penalty, "chat_template": chat_template}
        self.tokens_generated = 0
        self._stop_ids = set(self.renderer.stop_ids)
        self._pad_id = self.renderer.stop_ids[0]
        self._cache_arg = cache_keyword(self.llm)

    def prompt_ids(self, request: Request) -> list[int]:
        """The prompt's token ids, rendered by the one prompt policy."""
        return self.renderer.render(list(request.messages)).input_ids

    def generate(self, requests: Iterable[Request]) -> Iterator[Result]:
        """Answer every request; each result is yielded as soon as its row ends.

        Args:
            requests: conversations to answer (read lazily, a window of ``8 * max_batch`` at a time).

        Yields:
            One :class:`Result` per request, in the order they finish.
        """
        with self.torch.inference_mode():
            yield from self._run(iter(requests))

    # ------------------------------------------------------------------------------------ decode loop

    def _run(self, requests: Iterator[Request]) -> Iterator[Result]:
        torch = self.torch
        pending: deque[tuple[str, list[int]]] = deque()
        rows: list[_Row] = []
        cache = mask = positions = tokens = seen = None
        while True:
            if len(pending) < self.max_batch:
                # Sort each window by prompt length: neighbours in the queue pad little when prefilled together.
                window = [(r.key, self.prompt_ids(r)) for r in itertools.islice(requests, 8 * self.max_batch)]
                pending.extend(sorted(window, key=lambda item: len(item[1])))
            free = self.max_batch - len(rows)
            if pending and (free >= max(1, self.max_batch // 4) or not rows):
                group = self._take(pending, free)
                new_rows, new_cache, new_mask, new_positions, new_seen, logits = self._prefill(group)
                alive, new_tokens = yield from self._advance(new_rows, logits, new_seen)
                if alive:
                    new_rows, (new_mask, new_positions, new_tokens, new_seen) = self._keep(
                        alive, new_rows, new_cache, new_mask, new_positions, new_tokens, new_seen)
                    if rows:
                        cache, mask = self._join(cache, mask, new_cache, new_mask)
                        positions = torch.cat([positions, new_positions])
                        tokens = torch.cat([tokens, new_tokens])
                        seen = torch.cat([seen, new_seen])
                    else:
                        cache, mask, positions, tokens, seen = new_cache, new_mask, new_positions, new_tokens, new_seen
                    rows.extend(new_rows)
                continue
            if not rows:
                return
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)  # [a, L + 1]
            out = self.llm(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions[:, None],
                           use_cache=True, **{self._cache_arg: cache})
            positions = positions + 1
            alive, tokens = yield from self._advance(rows, out.logits[:, -1, :], seen)
            if len(alive) < len(rows):
                rows, (mask, positions, tokens, seen) = self._keep(alive, rows, cache, mask, positions, tokens, seen)
                if rows:
                    cache, mask = self._trim(cache, mask)

    def _keep(self, alive: list[int], rows: list[_Row], cache: Any, *per_row: Any) -> tuple[list[_Row], list[Any]]:
        """Keep only the ``alive`` rows of the batch: rows, cache and each ``[a, ...]`` tensor, in one order."""
        order = _fill_order(alive, len(rows))
        cache.batch_select_indices(order)
        keep = self.torch.tensor(order, dtype=self.torch.long, device=self.device)
        return [rows[i] for i in order], [tensor[keep] for tensor in per_row]

    def _take(self, pending: deque[tuple[str, list[int]]], free: int) -> list[tuple[str, list[int]]]:
        group = [pending.popleft()]
        while pending and len(group) < free:
            # The queue is sorted by length within a window, so the next prompt is the longest so far.
            if (len(group) + 1) * max(len(group[-1][1]), len(pending[0][1])) > self.max_prefill_tokens:
                break
            group.append(pending.popleft())
        return group

    def _prefill(self, group: list[tuple[str, list[int]]]) -> tuple[list[_Row], Any, Any, Any, Any, Any]:
        torch = self.torch
        width = max(len(ids) for _, ids in group)
        input_ids = torch.tensor([[self._pad_id] * (width - len(ids)) + ids for _, ids in group], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in group], device=self.device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: each row counts from its first token
        cache = GrowingCache()
        out = self.llm(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                       use_cache=True, logits_to_keep=1, **{self._cache_arg: cache})
        positions = torch.tensor([len(ids) for _, ids in group], device=self.device)
        logits = out.logits[:, -1, :]
        seen = seen_mask([ids for _, ids in group], logits.shape[-1], self.device)  # the prompt counts as seen
        return [_Row(key) for key, _ in group], cache, mask, positions, seen, logits

    def _advance(self, rows: list[_Row], logits: Any, seen: Any) -> Iterator[Result]:
        """Take each row's greedy token (after the repetition penalty) and mark it ``seen``; yield the rows
        that end. Returns (alive indices, next tokens)."""
        torch = self.torch
        logits = penalize_seen(logits.float(), seen, self.repetition_penalty)  # [a, V]
        nan_rows = torch.isnan(logits).any(dim=-1).tolist()
        next_tokens = logits.argmax(dim=-1)  # [a]
        seen.scatter_(1, next_tokens[:, None], True)
        alive = []
        for index, (row, token, nan) in enumerate(zip(rows, next_tokens.tolist(), nan_rows, strict=True)):
            if nan:
                yield self._result(row, "length", "nan logits")
                continue
            if token in self._stop_ids:
                yield self._result(row, "stop")
                continue
            row.run = row.run + 1 if row.token_ids and row.token_ids[-1] == token else 1
            row.token_ids.append(token)
            self.tokens_generated += 1
            if row.run >= self.repeat_limit:
                yield self._result(row, "length", f"repeated token {token} x{row.run}")
            elif len(row.token_ids) >= self.max_new_tokens:
                yield self._result(row, "length")
            else:
                alive.append(index)
        return alive, next_tokens

    def _result(self, row: _Row, finish_reason: str, degenerate: str | None = None) -> Result:
        text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
        return Result(row.key, text, finish_reason, len(row.token_ids), degenerate)

    def _join(self, cache: Any, mask: Any, new_cache: Any, new_mask: Any) -> tuple[Any, Any]:
        """Stack two caches along the batch, left-padding the shorter one (padding is masked out)."""
        torch = self.torch
        width = max(mask.shape[1], new_mask.shape[1])

        def pad(tensor: Any, length: int) -> Any:  # [b, h, L, d] -> [b, h, width, d]
            return torch.nn.functional.pad(tensor, (0, 0, width - length, 0))

        for old, new in zip(cache.layers, new_cache.layers, strict=True):
            old.keys = torch.cat([pad(old.keys, mask.shape[1]), pad(new.keys, new_mask.shape[1])])
            old.values = torch.cat([pad(old.values, mask.shape[1]), pad(new.values, new_mask.shape[1])])
        mask = torch.cat([
            torch.nn.functional.pad(mask, (width - mask.shape[1], 0)),
            torch.nn.functional.pad(new_mask, (width - new_mask.shape[1], 0)),
        ])
        return cache, mask

    def _trim(self, cache: Any, mask: Any) -> tuple[Any, Any]:
        """Drop leading cache columns that every remaining row masks out (left by rows that ended)."""
        first = int(mask.any(dim=0).int().argmax())
        if first == 0:
            return cache, mask
        for layer in cache.layers:
            layer.drop_leading(first)
        return cache, mask[:, first:]

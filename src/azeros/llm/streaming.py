"""Token streaming: the ids ``generate`` produces for a batch, turned into text pieces row by row."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedTokenizerBase
from transformers.generation.streamers import BaseStreamer

__all__ = ["TextCallback", "TokenStreamer"]

TextCallback = Callable[[int, str], None]  # (row of the batch, new text)


class TokenStreamer(BaseStreamer):
    """Turns the token ids ``generate`` produces for a batch into text pieces, row by row.

    A piece is emitted once it decodes cleanly (a character split across tokens waits for its end);
    the end-of-turn token and anything after it are not emitted.

    Args:
        tokenizer: the LLM's tokenizer.
        stop_ids: ids that end an answer.
        on_text: called with ``(row, piece)`` for every new piece of text.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop_ids: Sequence[int], on_text: TextCallback) -> None:
        self.tokenizer = tokenizer
        self.stop_ids = set(stop_ids)
        self.on_text = on_text
        self._prompt_seen = False
        self._ids: list[list[int]] = []
        self._emitted: list[int] = []
        self._done: list[bool] = []

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate first hands over the prompt ids (empty with inputs_embeds)
            self._prompt_seen = True
            return
        tokens = value.reshape(-1).tolist()  # [b]: one new token per row
        if not self._ids:
            self._ids = [[] for _ in tokens]
            self._emitted = [0] * len(tokens)
            self._done = [False] * len(tokens)
        for row, token in enumerate(tokens):
            if self._done[row]:
                continue
            if token in self.stop_ids:
                self._done[row] = True
                continue
            self._ids[row].append(token)
            text = self.tokenizer.decode(self._ids[row], skip_special_tokens=True)
            if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the next token
                continue
            if len(text) > self._emitted[row]:
                self.on_text(row, text[self._emitted[row] :])
                self._emitted[row] = len(text)

    def end(self) -> None:
        """Nothing is held back at the end: a dangling partial character is not text."""

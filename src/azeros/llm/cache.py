"""A transformers KV cache that grows in chunks instead of one position at a time.

transformers' ``DynamicCache`` appends each new position with ``torch.cat``, copying every layer's whole
cache at every decoding step. On a CPU this copy costs more than the model's matmuls once a batch of 64
answers is a few hundred tokens long (SmolLM2-135M, 64 rows, 250 positions: 420 ms a step, 290 ms with
this cache, same tokens). Here each layer keeps a buffer with room to spare, writes new positions in
place, and hands attention a view of the filled part; the buffer is reallocated (a quarter larger) only
when full.

It is a ``DynamicCache`` in every other respect (``crop``, ``batch_select_indices``, ``get_seq_length``)
so ``generate`` and code that edits ``layer.keys`` / ``layer.values`` directly keep working. Models with
sliding-window layers need transformers' own per-layer types: use ``DynamicCache(config=...)`` for them.

This module leans on transformers' cache internals (``DynamicLayer`` and its ``keys``/``values``/``update``,
``Cache(layer_class_to_replicate=...)``, the layer types of ``DynamicCache(config=...)``), which are not a
public API: ``tests/llm/test_transformers_contract.py`` checks them, and ``pyproject.toml`` bounds the
transformers versions they were checked on.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

__all__ = ["GrowingCache", "GrowingLayer", "attention_span", "cache_keyword"]

_MIN_HEADROOM = 128  # positions added beyond what is needed when a buffer is (re)allocated


class _Filled:
    """A :class:`GrowingLayer`'s ``keys`` or ``values``: reads as the filled part of its own buffer; assigning a
    tensor makes that tensor the buffer, filled to its full length.

    Keys and values each keep their own filled length, so assigning one never changes how the other reads:
    ``layer.keys = f(layer.keys); layer.values = f(layer.values)`` (what transformers and the batch join do)
    works as with ``DynamicLayer`` even when ``f`` changes the length.
    """

    def __init__(self, buffer: str, length: str) -> None:
        self.buffer, self.length = buffer, length  # the layer's attribute names

    def __get__(self, layer: GrowingLayer | None, owner: type | None = None) -> torch.Tensor | None:
        if layer is None:
            return self
        buffer = getattr(layer, self.buffer)
        return None if buffer is None else buffer[:, :, : getattr(layer, self.length)]

    def __set__(self, layer: GrowingLayer, tensor: torch.Tensor | None) -> None:
        setattr(layer, self.buffer, tensor)
        setattr(layer, self.length, 0 if tensor is None or tensor.dim() != 4 else tensor.shape[-2])


class GrowingLayer(DynamicLayer):
    """One layer's keys and values ``[b, h, capacity, d]``, of which the first ``length`` positions are filled."""

    keys = _Filled("_key_buffer", "_key_length")
    values = _Filled("_value_buffer", "_value_length")

    def __init__(self, **kwargs) -> None:
        self.keys = self.values = None
        super().__init__(**kwargs)

    @property
    def _length(self) -> int:
        """The filled positions of keys and values, which must agree (a caller may have assigned only one)."""
        if self._key_length != self._value_length:
            raise RuntimeError(f"the cache holds keys of {self._key_length} positions but values of "
                               f"{self._value_length}: assign both")
        return self._key_length

    @_length.setter
    def _length(self, length: int) -> None:
        self._key_length = self._value_length = length

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.keys = self.values = None
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``[b, h, n, d]`` new positions after the filled ones; return views of all filled positions."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self._length + key_states.shape[-2]
        if self._key_buffer is None or end > self._key_buffer.shape[-2]:
            capacity = end + max(_MIN_HEADROOM, end // 4)
            self._key_buffer = self._grown(self._key_buffer, key_states, capacity)
            self._value_buffer = self._grown(self._value_buffer, value_states, capacity)
        self._key_buffer[:, :, self._length : end] = key_states
        self._value_buffer[:, :, self._length : end] = value_states
        self._length = end
        return self.keys, self.values

    def _grown(self, buffer: torch.Tensor | None, like: torch.Tensor, capacity: int) -> torch.Tensor:
        batch, heads, _, dim = like.shape
        grown = like.new_empty(batch, heads, capacity, dim)
        if buffer is not None:
            grown[:, :, : self._length] = buffer[:, :, : self._length]
        return grown

    def crop(self, tokens_to_remove: int) -> None:
        """Forget the last ``-tokens_to_remove`` positions (transformers' sign convention); keeps the buffer."""
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative count of positions to remove, not {tokens_to_remove}")
        self._length = max(0, self._length + tokens_to_remove)

    def drop_leading(self, count: int) -> None:
        """Forget the first ``count`` positions of every row (columns all rows mask out); keeps the headroom."""
        self._key_buffer = self._key_buffer[:, :, count:]
        self._value_buffer = self._value_buffer[:, :, count:]
        self._length -= count

    def batch_select_indices(self, indices: torch.Tensor | list[int]) -> None:
        """Keep the rows ``indices``, in that order, with their headroom (the next step writes in place).

        A selection no larger than the batch is done within the buffer: only the rows that change place are
        copied (read first, so any order is safe) and the storage is kept. Dropping the rows of ended answers
        by moving the last rows into their slots thus copies a few rows, not the whole cache.
        """
        if self._key_buffer is None:
            return
        order = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        if len(order) > self._key_buffer.shape[0]:  # rows repeated beyond the batch: a new buffer
            self._key_buffer = self._key_buffer[order]
            self._value_buffer = self._value_buffer[order]
            return
        moved = [target for target, source in enumerate(order) if target != source]
        if moved:
            sources = [order[target] for target in moved]
            self._key_buffer[moved] = self._key_buffer[sources]
            self._value_buffer[moved] = self._value_buffer[sources]
        self._key_buffer = self._key_buffer[: len(order)]
        self._value_buffer = self._value_buffer[: len(order)]


class GrowingCache(DynamicCache):
    """A ``DynamicCache`` whose layers are :class:`GrowingLayer`; pass it to ``generate`` or ``forward``."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)


def cache_keyword(llm: torch.nn.Module) -> str:
    """The name ``llm.forward`` takes a KV cache under: transformers 5 says ``cache``, older versions
    only know ``past_key_values`` (which 5 still takes, with a deprecation warning)."""
    return "cache" if "cache" in inspect.signature(llm.forward).parameters else "past_key_values"


def attention_span(config: Any) -> float:
    """How many positions (the query's own included) every layer of an LLM attends to, as transformers' own
    cache for it says: the shortest sliding window or chunk among its layers; infinite when all attend to every
    earlier position; 0 when a layer is no plain attention (e.g. a recurrent state)."""
    spans = [
        math.inf if type(layer) is DynamicLayer
        else layer.sliding_window if type(layer) is DynamicSlidingWindowLayer
        else 0
        for layer in DynamicCache(config=config).layers
    ]
    return min(spans, default=math.inf)

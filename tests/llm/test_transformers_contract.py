"""What azeros relies on in transformers beyond its public API, checked on the installed version.

``azeros.llm.cache`` subclasses ``DynamicLayer`` and builds caches through ``Cache(layer_class_to_replicate=...)``;
``attention_span`` reads the layer types of ``DynamicCache(config=...)``; ``azeros.models.packing`` rebuilds a
cache from stored keys and values and reads ``config._attn_implementation``; the GGUF conversion clears
``model.hf_quantizer``. None of these is a public API, so pyproject.toml bounds transformers to the versions
checked here. When one of these fails after an upgrade, the message says what changed: adapt the named
code, then raise the bound.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import transformers
from transformers import DynamicCache

from azeros.llm import GrowingCache, attention_span
from tests.conftest import tiny_llm

VERSION = transformers.__version__


def _changed(what: str, where: str) -> str:
    return (f"transformers {VERSION} changed {what}, which {where} relies on: adapt it there, and move the "
            "transformers bound in pyproject.toml only once this test passes")


def test_dynamic_layer_keeps_keys_and_values_as_attributes_it_updates():
    from transformers.cache_utils import Cache, DynamicLayer

    assert "layer_class_to_replicate" in inspect.signature(Cache.__init__).parameters, _changed(
        "Cache.__init__ (no layer_class_to_replicate)", "azeros.llm.cache.GrowingCache")
    layer = DynamicLayer()
    for name in ("keys", "values", "is_initialized", "lazy_initialization", "update", "crop", "batch_select_indices"):
        assert hasattr(layer, name), _changed(f"DynamicLayer (no {name!r})", "azeros.llm.cache.GrowingLayer")
    key, value = torch.randn(2, 1, 3, 4), torch.randn(2, 1, 3, 4)  # [b, h, n, d]
    keys, values = layer.update(key, value)
    assert layer.is_initialized and layer.keys is keys and layer.values is values, _changed(
        "where DynamicLayer.update keeps what it returns (layer.keys / layer.values)", "azeros.llm.cache.GrowingLayer")


def test_a_growing_cache_is_a_dynamic_cache_to_the_model():
    llm = tiny_llm("llama", vocab_size=50)
    cache = GrowingCache()
    with torch.no_grad():
        llm(input_ids=torch.tensor([[1, 2, 3]]), use_cache=True, past_key_values=cache)
    assert cache.get_seq_length() == 3 and all(type(layer).__name__ == "GrowingLayer" for layer in cache.layers), \
        _changed("how a model fills the cache it is given", "azeros.llm.cache.GrowingCache")


def test_cache_layer_types_tell_the_attention_span():
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    full = tiny_llm("llama", vocab_size=50).config
    window = tiny_llm("mistral", vocab_size=50, sliding_window=8).config
    assert all(type(layer) is DynamicLayer for layer in DynamicCache(config=full).layers), _changed(
        "the layer type of full attention in DynamicCache(config=...)", "azeros.llm.cache.attention_span")
    layers = DynamicCache(config=window).layers
    assert all(type(layer) is DynamicSlidingWindowLayer and layer.sliding_window == 8 for layer in layers), _changed(
        "the layer type or window of sliding attention in DynamicCache(config=...)", "azeros.llm.cache.attention_span")
    assert (attention_span(full), attention_span(window)) == (float("inf"), 8)


def test_a_cache_rebuilds_from_stored_keys_and_values():
    llm = tiny_llm("llama", vocab_size=50)
    with torch.no_grad():
        out = llm.get_decoder()(input_ids=torch.tensor([[1, 2, 3]]), use_cache=True)
    stored = out["cache"] if "cache" in out else out["past_key_values"]
    pairs = [(layer.keys, layer.values) for layer in stored.layers]
    rebuilt = DynamicCache(pairs, config=llm.config)
    assert rebuilt.get_seq_length() == 3 and torch.equal(rebuilt.layers[0].keys, pairs[0][0]), _changed(
        "DynamicCache(list of (keys, values), config=...)", "azeros.models.packing.PrefixStates")


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_attention_implementation_is_read_from_the_config(implementation):
    llm = tiny_llm("llama", vocab_size=50)
    llm.config._attn_implementation = implementation
    assert llm.config._attn_implementation == implementation, _changed(
        "config._attn_implementation", "azeros.models.SpeechLLM.forward and azeros.models.packing.packed_inputs")


def test_saving_consults_the_quantizer_the_gguf_conversion_clears():
    from transformers import PreTrainedModel

    # A GGUF loads dequantized but marked with a quantizer that refuses to save; the conversion clears the mark.
    assert "hf_quantizer" in inspect.getsource(PreTrainedModel.save_pretrained), _changed(
        "how save_pretrained learns that a model is quantized (model.hf_quantizer)",
        "azeros.llm.weights.local_folder (GGUF conversion)")

"""GrowingCache is a drop-in DynamicCache: the same logits through every operation decoding uses."""

import pytest
import torch
from transformers import DynamicCache

from azeros.llm import GrowingCache, cache_keyword
from tests.conftest import tiny_llm


def _step(llm, cache, ids):
    with torch.no_grad():
        return llm(input_ids=ids, use_cache=True, **{cache_keyword(llm): cache}).logits  # [b, n, V]


def _prefilled(llm, prompt):
    """A DynamicCache and a GrowingCache, each after one pass over ``prompt``."""
    theirs, ours = DynamicCache(), GrowingCache()
    _step(llm, theirs, prompt)
    _step(llm, ours, prompt)
    return theirs, ours


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_same_logits_as_dynamic_cache_through_growth_crop_and_row_selection(family):
    llm = tiny_llm(family, vocab_size=300).eval()
    torch.manual_seed(0)
    prompt = torch.randint(0, 300, (3, 7))
    theirs, ours = DynamicCache(), GrowingCache()
    assert torch.equal(_step(llm, theirs, prompt), _step(llm, ours, prompt))
    for step in range(150):  # past the first buffer's headroom, so it is reallocated at least once
        token = torch.randint(0, 300, (3, 1))
        assert torch.equal(_step(llm, theirs, token), _step(llm, ours, token)), step
    assert ours.get_seq_length() == theirs.get_seq_length() == 157

    theirs.crop(-5)
    ours.crop(-5)
    keep = torch.tensor([2, 0])
    theirs.batch_select_indices(keep)
    ours.batch_select_indices(keep)
    token = torch.randint(0, 300, (2, 1))
    assert torch.equal(_step(llm, theirs, token), _step(llm, ours, token))
    for theirs_layer, ours_layer in zip(theirs.layers, ours.layers, strict=True):
        assert torch.equal(theirs_layer.keys, ours_layer.keys)
        assert torch.equal(theirs_layer.values, ours_layer.values)


def test_drop_leading_forgets_the_first_positions_and_keeps_writing_in_place():
    llm = tiny_llm("llama", vocab_size=300).eval()
    cache = GrowingCache()
    _step(llm, cache, torch.randint(0, 300, (2, 10)))
    layer = cache.layers[0]
    before = layer.keys.clone()
    layer.drop_leading(4)
    assert torch.equal(layer.keys, before[:, :, 4:])
    storage = layer.keys.untyped_storage().data_ptr()
    _step(llm, cache, torch.randint(0, 300, (2, 1)))
    assert layer.keys.shape[-2] == 7
    assert layer.keys.untyped_storage().data_ptr() == storage  # written into the headroom, not copied


def test_moving_the_last_rows_into_ended_slots_copies_in_place_and_decodes_like_dynamic_cache():
    llm = tiny_llm("llama", vocab_size=300).eval()
    torch.manual_seed(1)
    theirs, ours = _prefilled(llm, torch.randint(0, 300, (5, 6)))
    storage = ours.layers[0].keys.untyped_storage().data_ptr()
    order = [0, 4, 2]  # rows 1 and 3 ended; the last row takes slot 1
    theirs.batch_select_indices(torch.tensor(order))
    ours.batch_select_indices(torch.tensor(order))
    assert ours.layers[0].keys.untyped_storage().data_ptr() == storage  # moved within the buffer
    token = torch.randint(0, 300, (3, 1))
    assert torch.equal(_step(llm, theirs, token), _step(llm, ours, token))
    assert ours.layers[0].keys.untyped_storage().data_ptr() == storage  # and the next step still writes in place


def test_assigning_keys_then_values_of_a_new_length_works_as_in_dynamic_cache():
    """The batch join (and transformers) assigns ``keys`` then ``values``, reading each first: assigning keys
    of a new length must not change how values read, or values get padded twice."""
    llm = tiny_llm("llama", vocab_size=300).eval()
    torch.manual_seed(2)
    theirs, ours = _prefilled(llm, torch.randint(0, 300, (2, 5)))
    for cache in (theirs, ours):
        for layer in cache.layers:  # left-pad by 3 positions, as the join does
            layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, 3, 0))
            assert layer.values.shape[-2] == 5
            layer.values = torch.nn.functional.pad(layer.values, (0, 0, 3, 0))
    assert ours.get_seq_length() == theirs.get_seq_length() == 8
    token = torch.randint(0, 300, (2, 1))
    assert torch.equal(_step(llm, theirs, token), _step(llm, ours, token))

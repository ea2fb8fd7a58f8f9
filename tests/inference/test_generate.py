"""Sampling with a request's seed: reproducible, and the process's random state is left alone."""

from __future__ import annotations

import torch

from azeros.inference import GenerationParams, generate


def test_a_seeded_request_samples_from_its_own_generator(model, wavs):
    def sampled(seed):
        params = GenerationParams(max_new_tokens=12, do_sample=True, temperature=1.5, top_p=0.95, seed=seed)
        return [a.token_ids for a in generate(model, [str(wavs[0]), None], [None, "Tell me a story."], params=params)]

    torch.manual_seed(123)
    global_state = torch.random.get_rng_state()
    first = sampled(7)
    assert torch.equal(torch.random.get_rng_state(), global_state)  # the process's generator: untouched
    assert sampled(7) == first  # the same seed samples the same answers
    assert sampled(8) != first
    greedy = [a.token_ids for a in generate(model, [str(wavs[0]), None], [None, "Tell me a story."],
                                            params=GenerationParams(max_new_tokens=12))]
    assert greedy != first  # it did sample

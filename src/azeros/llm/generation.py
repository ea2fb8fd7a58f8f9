"""Generation from embeddings: how answers are decoded, with what parameters, and what comes back.

:class:`GenerationParams` is the one description of how to generate, from an HTTP request or a command-line
flag down to the decoder. Sampling draws from a ``torch.Generator`` of the request's own (seeded by
``seed``), never from torch's global generator: a request's seed must not reseed the process (a server
answers other requests on other threads meanwhile), and two requests with one seed must sample alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)
from transformers.generation.streamers import BaseStreamer

from azeros.llm.cache import GrowingCache, cache_keyword
from azeros.llm.repetition import RepetitionPenalty, default_repetition_penalty

__all__ = ["Answer", "GenerationParams", "generate_from_embeddings"]


@dataclass(frozen=True)
class GenerationParams:
    """How to generate an answer; requests with equal params can share one batch.

    Attributes:
        max_new_tokens: answer length limit.
        do_sample: sample instead of greedy.
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        repetition_penalty: rescales the logits of tokens already seen, the prompt's text and the answer
            (transformers' and vLLM's meaning, see :mod:`azeros.llm.repetition`); ``None`` takes the LLM's
            own generation config.
        seed: seeds this request's sampling generator; ``None``: a fresh random seed.
    """

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float | None = None
    seed: int | None = None


@dataclass
class Answer:
    """One generated answer.

    Attributes:
        text: the answer, special tokens removed.
        finish_reason: ``stop`` (ended by itself) or ``length`` (cut at ``max_new_tokens``).
        token_ids: the generated ids, without the end token.
    """

    text: str
    finish_reason: Literal["stop", "length"]
    token_ids: list[int]


def generate_from_embeddings(
    llm: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    stop_ids: Sequence[int],
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_ids: list[list[int]],
    params: GenerationParams = GenerationParams(),
    *,
    cache: Any = None,
    streamer: BaseStreamer | None = None,
    stop: Callable[[], Sequence[bool]] | None = None,
) -> list[Answer]:
    """Generate answers for a left-padded batch of embedded prompts.

    Only the repetition penalty defaults to the LLM's own generation config (as in target generation);
    every other setting is what ``params`` says.

    Args:
        llm: the frozen causal LM.
        tokenizer: its tokenizer (decodes the answers).
        stop_ids: token ids that end an answer (the first is also the padding of ended rows).
        inputs_embeds: ``[b, L, H]`` the prompts, left-padded.
        attention_mask: ``[b, L]`` 1 on prompt positions.
        prompt_ids: per row, the prompt's text token ids (audio and padding left out): they count as seen
            for the repetition penalty.
        params: generation parameters.
        cache: a transformers KV cache holding a prefix of the (single-row) batch; extended in place.
        streamer: a transformers streamer that receives the tokens as they come.
        stop: asked after every new token which rows to stop (e.g. nobody waits for them any more);
            a stopped row's answer ends there, and generation ends once every row has ended.

    Returns:
        One answer per row.
    """
    config = GenerationConfig(
        max_new_tokens=params.max_new_tokens,
        do_sample=False,  # a sampled token is drawn by _SeededSampling, which leaves generate nothing to choose
        temperature=None,
        top_p=None,
        top_k=None,
        repetition_penalty=1.0,  # applied by RepetitionPenalty below, prompt included
        eos_token_id=list(stop_ids),
        pad_token_id=stop_ids[0],
    )
    penalty = params.repetition_penalty
    processors: list[LogitsProcessor] = [  # generate alone would not count the prompt as seen
        RepetitionPenalty(prompt_ids, default_repetition_penalty(llm) if penalty is None else penalty)
    ]
    if params.do_sample:
        processors.append(_SeededSampling(params.temperature, params.top_p, params.seed))
    extra = {cache_keyword(llm): cache if cache is not None else GrowingCache()}
    with torch.no_grad():
        sequences = llm.generate(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, generation_config=config, streamer=streamer,
            logits_processor=processors,
            stopping_criteria=StoppingCriteriaList([_RowsStopped(stop)] if stop is not None else []), **extra,
        )  # [b, new tokens]: with inputs_embeds only, nothing of the prompt is returned
    answers = []
    for row in sequences.tolist():
        end = next((i for i, t in enumerate(row) if t in stop_ids), None)
        ids = row if end is None else row[:end]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        answers.append(Answer(text, "length" if end is None else "stop", ids))
    return answers


class _SeededSampling(LogitsProcessor):
    """Samples each row's next token (temperature, then nucleus) from the request's own generator.

    The sampled token keeps its score and every other token gets ``-inf``, so ``generate``'s greedy choice is
    the sample: transformers' own sampling would draw from the process-wide generator.
    """

    def __init__(self, temperature: float, top_p: float, seed: int | None) -> None:
        self.warpers = []
        if temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))
        self.seed = seed
        self.generator: torch.Generator | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.generator is None:  # made on first use, on the device the scores are on
            self.generator = torch.Generator(scores.device)
            if self.seed is None:
                self.generator.seed()
            else:
                self.generator.manual_seed(self.seed)
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)  # [b, V]
        chosen = torch.multinomial(probs, num_samples=1, generator=self.generator)  # [b, 1]
        return torch.full_like(scores, -torch.inf).scatter(1, chosen, scores.gather(1, chosen))


class _RowsStopped(StoppingCriteria):
    """Ends the rows a caller asks to stop."""

    def __init__(self, stop: Callable[[], Sequence[bool]]) -> None:
        self.stop = stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.tensor(list(self.stop()), dtype=torch.bool, device=input_ids.device)  # [b]

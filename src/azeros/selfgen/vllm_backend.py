"""Generation with vLLM's offline engine (optional: ``pip install vllm``).

The prompts are rendered to token ids by the one prompt policy and handed to the engine as
``{"prompt_token_ids": ...}``, so vLLM sees exactly the tokens training will see; the engine schedules
and batches them itself. Results are yielded chunk by chunk, so a killed run loses at most one chunk.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from azeros.selfgen.base import Request, Result, longest_repeat
from azeros.text import PromptRenderer

__all__ = ["VLLMBackend"]

logger = logging.getLogger(__name__)


class VLLMBackend:
    """Generate answers with a vLLM ``LLM`` engine (greedy).

    Args:
        engine: a ``vllm.LLM`` (or any object with the same ``generate(prompts, sampling_params)``).
        tokenizer: the model's tokenizer (with its chat template).
        model_name: recorded as ``from_model``.
        make_sampling_params: builds the engine's sampling parameters from keyword arguments
            (``vllm.SamplingParams``).
        max_new_tokens: the length limit of an answer.
        chunk_size: requests handed to the engine per call (results are written after each call).
        repeat_limit: a run of this many identical tokens marks an answer degenerate.
        repetition_penalty: rescales the logits of tokens already seen (vLLM's meaning, the same as
            transformers'; see :mod:`azeros.llm.repetition`). :meth:`from_model` defaults it to the LLM's own
            generation config.
    """

    def __init__(
        self,
        engine: Any,
        tokenizer: Any,
        model_name: str,
        make_sampling_params: Callable[..., Any],
        *,
        max_new_tokens: int = 1024,
        chunk_size: int = 4096,
        repeat_limit: int = 64,
        repetition_penalty: float = 1.0,
        chat_template: str | None = None,
    ) -> None:
        self.engine = engine
        self.renderer = PromptRenderer(tokenizer, chat_template=chat_template)
        self.model_name = model_name
        self.sampling_params = make_sampling_params(
            temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=self.renderer.stop_ids,
            skip_special_tokens=True, repetition_penalty=repetition_penalty,
        )
        self.repetition_penalty = repetition_penalty
        self.settings = {"model": model_name, "max_new_tokens": max_new_tokens, "repeat_limit": repeat_limit,
                         "repetition_penalty": repetition_penalty, "chat_template": chat_template}
        self.tokens_generated = 0  # the engine answers a chunk at once: counted as its answers are read
        logger.info("%s: repetition_penalty %s", model_name, repetition_penalty)
        self.chunk_size = chunk_size
        self.repeat_limit = repeat_limit

    @classmethod
    def from_model(cls, model: str, **kwargs: Any) -> VLLMBackend:
        """Start a vLLM engine for ``model`` (hub id, folder, GGUF file or embedded alias).

        Args:
            model: where the LLM lives.
            **kwargs: ``max_new_tokens``, ``chunk_size``, ``repeat_limit``, ``chat_template`` and ``repetition_penalty``
                (``None`` or absent: the LLM's own generation config); the rest are engine options for
                ``vllm.LLM`` (``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``...).

        Raises:
            ImportError: when vLLM is not installed, saying how to install it.
        """
        try:
            from vllm import LLM, SamplingParams
        except ImportError as error:
            raise ImportError("the vllm backend needs vLLM: pip install vllm (on a machine with a GPU)") from error
        from azeros.llm import default_repetition_penalty, load_tokenizer, local_folder

        folder = local_folder(model)
        own = {key: kwargs.pop(key) for key in ("max_new_tokens", "chunk_size", "repeat_limit", "chat_template")
               if key in kwargs}
        penalty = kwargs.pop("repetition_penalty", None)
        own["repetition_penalty"] = default_repetition_penalty(folder) if penalty is None else float(penalty)
        logger.info("vLLM engine options for %s: %s", model, kwargs)
        return cls(LLM(model=folder, **kwargs), load_tokenizer(folder), model, SamplingParams, **own)

    def generate(self, requests: Iterable[Request]) -> Iterator[Result]:
        """Answer every request, ``chunk_size`` at a time.

        Args:
            requests: conversations to answer (read lazily).

        Yields:
            One :class:`Result` per request.
        """
        iterator = iter(requests)
        while chunk := list(itertools.islice(iterator, self.chunk_size)):
            prompts = [{"prompt_token_ids": self.renderer.render(list(r.messages)).input_ids} for r in chunk]
            outputs = self.engine.generate(prompts, self.sampling_params, use_tqdm=False)
            for request, output in zip(chunk, outputs, strict=True):
                completion = output.outputs[0]
                token_ids = list(completion.token_ids)
                # vLLM may include the stop token in the ids; it is not part of the answer.
                if token_ids and token_ids[-1] in self.renderer.stop_ids:
                    token_ids.pop()
                run = longest_repeat(token_ids)
                self.tokens_generated += len(token_ids)
                yield Result(
                    key=request.key,
                    text=completion.text,
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                    num_tokens=len(token_ids),
                    degenerate=f"repeated token x{run}" if run >= self.repeat_limit else None,
                )

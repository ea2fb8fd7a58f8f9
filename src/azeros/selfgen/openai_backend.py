"""Generation through any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp, a hosted API).

Requests run concurrently on a thread pool; each result is yielded as soon as its response arrives.
Transient failures (HTTP 5xx and 429, timeouts, refused or dropped connections) are retried with
exponential backoff; any other error stops the run with the server's message. The server applies the
model's own chat template to the messages' oracle text, as the local backends do.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx

from azeros.selfgen.base import Request, Result, longest_repeat

__all__ = ["OpenAIBackend", "RetriesExhausted"]

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}

logger = logging.getLogger(__name__)


class RetriesExhausted(RuntimeError):
    """A request failed every attempt."""


class OpenAIBackend:
    """Generate answers with a chat-completions server (greedy: temperature 0).

    Args:
        base_url: the server's API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows.
        api_key_env: the environment variable holding the API key (unset: no key is sent).
        concurrency: requests in flight at once.
        timeout: seconds one attempt may take.
        retries: attempts after the first, for transient failures.
        backoff: seconds before the first retry; doubled at each further one.
        max_new_tokens: the length limit of an answer.
        repeat_limit: a run of this many identical tokens marks an answer degenerate (when the server
            reports token ids; otherwise only its text is checked for a repeated character run).
        repetition_penalty: sent as ``repetition_penalty`` (vLLM, SGLang and llama.cpp read it as
            transformers does; see :mod:`azeros.llm.repetition`); ``None`` sends nothing, so the server applies
            its model's own generation config.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 120.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_new_tokens: int = 1024,
        repeat_limit: int = 64,
        repetition_penalty: float | None = None,
    ) -> None:
        self.model_name = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.max_new_tokens = max_new_tokens
        self.repeat_limit = repeat_limit
        self.repetition_penalty = repetition_penalty
        self.settings = {"model": model, "max_new_tokens": max_new_tokens, "repeat_limit": repeat_limit,
                         "repetition_penalty": repetition_penalty}
        self.tokens_generated = 0  # answers arrive whole: counted as they come
        logger.info("%s: repetition_penalty %s", model,
                    "the server's default (its model's generation config)" if repetition_penalty is None
                    else repetition_penalty)

    def _payload(self, request: Request) -> dict[str, Any]:
        payload = {
            "model": self.model_name,
            "messages": [{"role": m.role, "content": m.oracle_content()} for m in request.messages],
            "temperature": 0.0,
            "max_tokens": self.max_new_tokens,
        }
        if self.repetition_penalty is not None:
            payload["repetition_penalty"] = self.repetition_penalty
        return payload

    def _post(self, request: Request) -> Result:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(self.url, json=self._payload(request))
                if response.status_code not in _RETRY_STATUS:
                    response.raise_for_status()
                    return self._result(request.key, response.json())
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
            except (httpx.TimeoutException, httpx.TransportError) as error:
                failure = f"{type(error).__name__}: {error}"
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        raise RetriesExhausted(f"{request.key}: gave up after {self.retries + 1} attempts; last: {failure}")

    def _result(self, key: str, body: dict[str, Any]) -> Result:
        choice = body["choices"][0]
        text = choice["message"].get("content") or ""
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        tokens = (body.get("usage") or {}).get("completion_tokens") or len(text.split())
        # Token ids are not returned by the chat API: a long run of one character stands in for a repeat.
        run = longest_repeat(text)
        degenerate = f"repeated character x{run}" if run >= self.repeat_limit else None
        return Result(key, text, finish, int(tokens), degenerate)

    def generate(self, requests: Iterable[Request]) -> Iterator[Result]:
        """Answer every request, ``concurrency`` at a time; yields results as they arrive.

        Args:
            requests: conversations to answer (read lazily).

        Yields:
            One :class:`Result` per request, in the order they complete.

        Raises:
            RetriesExhausted: when a request fails every attempt (results yielded before stay valid).
        """
        pending = iter(requests)
        with ThreadPoolExecutor(self.concurrency) as pool:
            in_flight: set[Future[Result]] = set()
            exhausted = False
            while True:
                while not exhausted and len(in_flight) < self.concurrency:
                    request = next(pending, None)
                    if request is None:
                        exhausted = True
                    else:
                        in_flight.add(pool.submit(self._post, request))
                if not in_flight:
                    return
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    self.tokens_generated += result.num_tokens
                    yield result


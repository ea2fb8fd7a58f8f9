"""A judge for open-ended answers through any OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp, ...).

The prompt, seed and temperature are fixed and written into every benchmark summary with the judge's
model name and the prompt's hash, so a score can be traced to exactly how it was produced. A reply
that holds no score is counted as the lowest score and reported (never dropped from the average).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["JUDGE_PROMPT", "JudgeClient", "JudgeConfig", "JudgeVerdict"]

# VoiceBench's open-ended scale (1-5), worded for a spoken question answered in text.
JUDGE_PROMPT = """I need your help to evaluate the performance of several models in a speech interaction scenario. The models receive the user's speech input and respond with text. Your task is to rate a model's response based on the user's question, given here as a transcript.

Score the response from 1 to 5:
1 point: the response is largely irrelevant, incorrect, or fails to address the user's question.
2 points: the response is somewhat relevant but lacks accuracy or completeness.
3 points: the response is relevant and mostly accurate but may lack conciseness or include unnecessary detail.
4 points: the response is relevant, accurate and concise, with only minor room for improvement.
5 points: the response is exceptionally relevant, accurate and to the point.

Below is the transcript of the user's question and the model's response:
### [Question]
{question}

### [Response]
{answer}

After evaluating, output the score only, as a single digit from 1 to 5."""

MIN_SCORE, MAX_SCORE = 1, 5
_SCORE = re.compile(rf"\b([{MIN_SCORE}-{MAX_SCORE}])\b")


@dataclass(frozen=True)
class JudgeConfig:
    """Where the judge is and how it is asked.

    Attributes:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model's name.
        api_key_env: environment variable holding the API key (sent as a bearer token when set).
        seed: sent with every request.
        temperature: sent with every request (0: as deterministic as the server allows).
        max_tokens: the reply's length limit.
        timeout: seconds per attempt.
        retries: further attempts after a transport error or a 5xx/429 answer.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    seed: int = 0
    temperature: float = 0.0
    max_tokens: int = 8
    timeout: float = 60.0
    retries: int = 3


@dataclass(frozen=True)
class JudgeVerdict:
    """One judgement.

    Attributes:
        score: the score read from the reply; the lowest score when the reply holds none.
        parsed: whether the reply held a score.
        reply: the judge's reply verbatim.
    """

    score: int
    parsed: bool
    reply: str


class JudgeClient:
    """Scores answers to open-ended spoken questions with a fixed prompt.

    Args:
        config: the endpoint and the sampling settings.
        client: an ``httpx.Client`` to use (tests); one is made otherwise.
    """

    def __init__(self, config: JudgeConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        key = os.environ.get(config.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = client or httpx.Client(headers=headers, timeout=config.timeout)
        self.url = config.base_url.rstrip("/") + "/chat/completions"

    def describe(self) -> dict[str, Any]:
        """What a summary records about the judge: endpoint, model, seed, temperature and the prompt."""
        return {
            "base_url": self.config.base_url,
            "model": self.config.model,
            "seed": self.config.seed,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "prompt_sha256": hashlib.sha256(JUDGE_PROMPT.encode()).hexdigest(),
            "prompt": JUDGE_PROMPT,
        }

    def request_body(self, question: str, answer: str) -> dict[str, Any]:
        """The chat-completions request for one judgement."""
        return {
            "model": self.config.model,
            "messages": [{"role": "user", "content": JUDGE_PROMPT.format(question=question, answer=answer)}],
            "seed": self.config.seed,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }

    def judge(self, question: str, answer: str) -> JudgeVerdict:
        """Score one answer.

        Args:
            question: the transcript of the spoken question.
            answer: the system's answer.

        Raises:
            RuntimeError: the endpoint failed after every retry, or refused the request (4xx).
        """
        reply = self.complete(self.request_body(question, answer))[0]
        match = _SCORE.search(reply)
        return JudgeVerdict(int(match.group(1)) if match else MIN_SCORE, match is not None, reply)

    def complete(self, body: dict[str, Any]) -> list[str]:
        """Send one chat-completions request, retrying transport errors and 5xx/429 answers.

        Returns:
            The content of each choice of the reply, in order.

        Raises:
            RuntimeError: the endpoint failed after every retry, or refused the request (4xx).
        """
        for attempt in range(self.config.retries + 1):
            try:
                response = self.client.post(self.url, json=body)
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    return [choice["message"]["content"] or "" for choice in response.json()["choices"]]
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code != 429 and response.status_code < 500:
                    break  # a refused request will be refused again
            if attempt < self.config.retries:
                time.sleep(min(2.0**attempt, 10.0))
        raise RuntimeError(f"judge {self.url} failed: {failure}")

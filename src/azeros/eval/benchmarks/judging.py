"""A benchmark's judge: official prompts sent to any OpenAI-compatible endpoint, every reply cached on disk.

Each sample of a judgement is its own request with its own seed (``seed``, ``seed + 1``, ...), so servers
that ignore ``n`` (llama.cpp) give as many samples as OpenAI or vLLM. A request is keyed by the SHA-256
of its canonical JSON (model, messages, sampling settings): a rerun, or a run resumed after a kill, reads
the reply from the cache and sends nothing, so it costs nothing and gives the same scores.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azeros.eval.judge import JudgeClient, JudgeConfig

__all__ = ["CachedJudge", "Sampling"]


@dataclass(frozen=True)
class Sampling:
    """How a protocol asks its judge (the official scripts' settings).

    Attributes:
        samples: replies per judgement (VoiceBench asks for 3 and averages or votes).
        temperature: sampling temperature.
        top_p: nucleus mass (``None``: not sent).
        max_tokens: reply length limit.
        system: the system message, or ``None``.
    """

    samples: int = 1
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int = 1024
    system: str | None = None


class CachedJudge:
    """Asks a judge and remembers every reply in ``cache_dir`` (one JSON file per request).

    Args:
        config: the endpoint (URL, model, key variable, seed, timeout, retries).
        cache_dir: where replies are kept.
        client: a ready :class:`~azeros.eval.judge.JudgeClient` (tests); one is made from ``config`` otherwise.
    """

    def __init__(self, config: JudgeConfig, cache_dir: str | Path, client: JudgeClient | None = None) -> None:
        self.config = config
        self.cache_dir = Path(cache_dir)
        self.client = client or JudgeClient(config)
        self.requests_sent = 0

    def describe(self) -> dict[str, Any]:
        """What a summary records about the judge."""
        return {"base_url": self.config.base_url, "model": self.config.model, "seed": self.config.seed,
                "cache": str(self.cache_dir)}

    def _body(self, prompt: str, sampling: Sampling, sample: int) -> dict[str, Any]:
        head = [{"role": "system", "content": sampling.system}] if sampling.system else []
        body = {"model": self.config.model, "messages": [*head, {"role": "user", "content": prompt}],
                "seed": self.config.seed + sample, "temperature": sampling.temperature,
                "max_tokens": sampling.max_tokens}
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        return body

    def ask(self, prompt: str, sampling: Sampling) -> list[str]:
        """The judge's replies to ``prompt``, ``sampling.samples`` of them, from the cache when there.

        Thread-safe: concurrent callers may ask the same request twice, and both write the same file.
        """
        replies = []
        for sample in range(sampling.samples):
            body = self._body(prompt, sampling, sample)
            key = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
            path = self.cache_dir / key[:2] / f"{key}.json"
            if path.is_file():
                replies.append(json.loads(path.read_text())["reply"])
                continue
            reply = self.client.complete(body)[0]
            self.requests_sent += 1
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.{id(body)}.partial")
            partial.write_text(json.dumps({"request": body, "reply": reply}, ensure_ascii=False, sort_keys=True))
            partial.replace(path)  # atomic: a killed run never leaves half a reply behind
            replies.append(reply)
        return replies

"""Load test of a running ``azeros serve``: concurrent chat completions, good and bad inputs mixed.

    azeros serve MODEL --port 8000 &
    .venv/bin/python benchmarks/serve.py --url http://127.0.0.1:8000 [--api-key KEY]

Every good request must be answered (200 with text) and every bad one refused with a 4xx and a reason;
the server must be healthy afterwards. Prints requests/s and p50/p95 latency of the good requests; the
last line is a JSON object with the figures. Exits 1 if any expectation fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import sys
import time

import httpx
import numpy as np
import soundfile as sf


def wav_base64(seconds: float, seed: int) -> str:
    """A speech-level noisy tone as a base64 16 kHz wav."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000))
    wave = 0.3 * rng.standard_normal(t.size) + np.sin(t * (0.02 + 0.003 * seed))
    buffer = io.BytesIO()
    sf.write(buffer, (0.1 * wave / np.abs(wave).max()).astype(np.float32), 16000, format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()


def audio_turn(data: str) -> dict:
    return {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}]}


def plan(count: int, model: str, max_tokens: int) -> list[tuple[str, dict]]:
    """``count`` requests, one in three bad (each kind of bad input in turn), a quarter of the good streamed."""
    bad = [
        {"model": model, "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        {"model": model, "messages": [audio_turn("%%% not base64 %%%")]},
        {"model": model, "messages": [audio_turn(base64.b64encode(b"RIFF....WAVEjunk" * 16).decode())]},
        {"model": "no-such-model", "messages": [audio_turn(wav_base64(1.0, 0))]},
    ]
    good_audio = [wav_base64(1.0 + 0.5 * (i % 4), i) for i in range(8)]
    requests = []
    for i in range(count):
        if i % 3 == 2:
            requests.append(("bad", bad[(i // 3) % len(bad)]))
        else:
            body = {"model": model, "messages": [audio_turn(good_audio[i % 8])], "max_tokens": max_tokens,
                    "stream": i % 4 == 0}
            requests.append(("good", body))
    return requests


async def send(client: httpx.AsyncClient, kind: str, body: dict) -> tuple[str, float, str | None]:
    """Returns (kind, seconds, problem or None)."""
    start = time.perf_counter()
    reply = await client.post("/v1/chat/completions", json=body)
    seconds = time.perf_counter() - start
    if kind == "bad":
        ok = 400 <= reply.status_code < 500 and reply.json().get("error", {}).get("message")
        return kind, seconds, None if ok else f"bad input got {reply.status_code}: {reply.text[:200]}"
    if reply.status_code != 200:
        return kind, seconds, f"good input got {reply.status_code}: {reply.text[:200]}"
    if body["stream"]:
        ok = reply.text.rstrip().endswith("data: [DONE]") and '"finish_reason"' in reply.text
    else:
        ok = "content" in reply.json()["choices"][0]["message"]
    return kind, seconds, None if ok else f"malformed answer: {reply.text[:200]}"


async def run(args: argparse.Namespace) -> dict:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=args.timeout) as client:
        model = args.model or (await client.get("/health")).json()["model"]
        requests = plan(args.requests, model, args.max_tokens)
        start = time.perf_counter()
        results = await asyncio.gather(*(send(client, kind, body) for kind, body in requests))
        elapsed = time.perf_counter() - start
        health = (await client.get("/health")).json()
    problems = [problem for _, _, problem in results if problem]
    good = sorted(seconds for kind, seconds, _ in results if kind == "good")
    return {
        "requests": len(results),
        "good": len(good),
        "bad": len(results) - len(good),
        "failures": len(problems),
        "requests_per_s": round(len(results) / elapsed, 2),
        "p50_latency_s": round(float(np.percentile(good, 50)), 3),
        "p95_latency_s": round(float(np.percentile(good, 95)), 3),
        "healthy_after": health.get("status") == "ok" and health.get("pending") == 0,
        "problems": problems[:5],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key")
    parser.add_argument("--model", help="model name (default: the one /health reports)")
    parser.add_argument("--requests", type=int, default=50, help="all sent at once")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(f"{figures['requests']} requests ({figures['good']} good, {figures['bad']} bad) at once: "
          f"{figures['requests_per_s']} requests/s, good p50 {figures['p50_latency_s']} s, "
          f"p95 {figures['p95_latency_s']} s, {figures['failures']} failures, "
          f"healthy after: {figures['healthy_after']}")
    print(json.dumps(figures))
    return 0 if figures["failures"] == 0 and figures["healthy_after"] else 1


if __name__ == "__main__":
    sys.exit(main())

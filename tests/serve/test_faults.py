"""Fault injection against the server on 127.0.0.1 (issue 18): decode bombs, prompts past the context,
a request that fails inside a batch, clients that hang up, and a bounded load test mixing all of them.

Memory is measured on this process, which runs the server in a thread: its peak resident size is reset
(``/proc/self/clear_refs``) before an action and read back (``VmHWM``) after it.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import re
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from azeros.cli import main
from azeros.inference import EngineRequest, GenerationParams, Turn, load_model
from azeros.inference import engine as engine_module
from azeros.serve import RequestError, ServerConfig, ServingChat, ServingLimits, load_server
from azeros.serve.protocol import ChatCompletionRequest
from tests.serve.conftest import RunningServer
from tests.sounds import speechlike

pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")

MEMORY_BOUND_MB = 64  # a refused upload may not grow the server's peak memory by more than this
LONG_TEXT = ("please tell me about the weather in the mountains and by the sea " * 700)[:45000]


def _status_mb(field: str) -> float:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def peak_growth_mb(action):
    """Run ``action``; return its result and how far it pushed this process's peak RSS above the start (MB)."""
    gc.collect()
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    result = action()
    return result, _status_mb("VmHWM") - before


def encoded(wave: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[bytes, str, str]]:
    """name -> (small file, format, what the refusal must say): 2 min of 8-channel FLAC silence
    (~180 MB decoded) and a WAV whose header claims 8 Hz (~160 MB once resampled to 16 kHz)."""
    flac = io.BytesIO()
    with sf.SoundFile(flac, "w", 48000, 8, format="FLAC", subtype="PCM_16") as sound:
        for _ in range(120):
            sound.write(np.zeros((48000, 8), np.int16))
    noise = (np.random.default_rng(0).standard_normal(20000) * 3000).astype(np.int16)
    return {
        "flac 8 channels": (flac.getvalue(), "flac", "too long (120.00 s > maximum 3 s)"),
        "wav at 8 Hz": (encoded(noise, 8), "wav", "unsupported sample rate 8 Hz"),
    }


@pytest.fixture(scope="module")
def faulty(model_folder):
    """A server of its own (the tests patch its model): 3 s audio, 8 answer tokens, a 100 ms batch window."""
    config = ServerConfig(
        model_name="tiny", max_pending=64, batch_window_ms=100,
        limits=ServingLimits(max_audio_seconds=3.0, default_max_tokens=8, max_tokens_limit=2000),
    )
    running = RunningServer(load_server(load_model(model_folder), config))
    yield running
    running.stop()


def body(content, stream: bool = False) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], "stream": stream}


def audio_body(data: bytes, fmt: str = "wav", stream: bool = False) -> dict:
    part = {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}
    return body([part], stream)


def post(server, payload: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions", json=payload, timeout=timeout)


class Blocked:
    """Holds the engine's worker inside a generation until released, so requests queue up behind it."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.release = threading.Event()
        started = threading.Event()

        def hold(_: str) -> None:
            started.set()
            self.release.wait(60)

        self.future = engine.submit(EngineRequest([Turn("user", "hold")], params=GenerationParams(max_new_tokens=2),
                                                  on_text=hold))
        assert started.wait(30), "the engine never started the blocking request"

    def wait_pending(self, count: int, seconds: float = 15) -> bool:
        deadline = time.monotonic() + seconds
        while self.engine.pending != count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.engine.pending == count

    def __enter__(self) -> Blocked:
        return self

    def __exit__(self, *_) -> None:
        self.release.set()
        self.future.result(timeout=60)


def test_decode_bombs_are_refused_from_the_header_within_bounded_memory(faulty, bombs):
    assert post(faulty, body("warm up")).status_code == 200
    for name, (data, fmt, reason) in bombs.items():
        assert len(data) < 200_000, name
        reply, growth = peak_growth_mb(lambda: post(faulty, audio_body(data, fmt)))
        assert reply.status_code == 400, (name, reply.text)
        assert reason in reply.json()["error"]["message"], (name, reply.text)
        assert growth < MEMORY_BOUND_MB, f"{name}: the server's peak memory grew by {growth:.0f} MB"


def test_a_port_in_use_is_refused_before_the_model_loads(model_folder, monkeypatch, capsys):
    def load_model(*_, **__):
        raise AssertionError("the model was loaded before the port was checked")

    monkeypatch.setattr("azeros.serve.app.load_model", load_model)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", str(model_folder), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in capsys.readouterr().err
    assert main(["serve", str(model_folder), "--port", "70000"]) == 2
    assert "cannot listen on 127.0.0.1:70000: bind(): port must be 0-65535" in capsys.readouterr().err


def test_prompt_past_the_context_is_400_and_holds_up_nobody(faulty):
    async def both():
        async with httpx.AsyncClient(base_url=faulty.url, timeout=300) as client:
            async def timed(payload: dict, delay: float):
                await asyncio.sleep(delay)
                start = time.monotonic()
                reply = await client.post("/v1/chat/completions", json=payload)
                return reply, time.monotonic() - start

            return await asyncio.gather(timed(body(LONG_TEXT), 0), timed(body("hello there"), 0.2))

    (long_reply, _), (short_reply, short_seconds) = asyncio.run(both())
    assert long_reply.status_code == 400, long_reply.text[:200]
    error = long_reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "messages"
    assert "over the limit of 2047 (the model's context of 2048 tokens" in error["message"]
    assert short_reply.status_code == 200 and short_seconds < 30


def test_configured_prompt_limit(faulty):
    serving = faulty.app.state.serving
    limited = ServingChat(serving.engine, "tiny", ServingLimits(max_prompt_tokens=40))
    try:
        with pytest.raises(RequestError, match=r"over the limit of 40 \(the server's limit\)") as refused:
            asyncio.run(limited._check(ChatCompletionRequest.model_validate(body("hello " * 30))))
        assert refused.value.status == 400
        request, _ = asyncio.run(limited._check(ChatCompletionRequest.model_validate(body("hello"))))
        assert request.params.max_new_tokens == 256
    finally:
        limited._workers.shutdown()


def test_a_failing_request_fails_alone_with_an_openai_500(faulty, monkeypatch):
    engine = faulty.app.state.serving.engine
    build_batch = engine_module.build_batch

    def fragile(model, conversations, *args, **kwargs):
        if "boom" in repr(conversations):
            raise RuntimeError("injected fault")
        return build_batch(model, conversations, *args, **kwargs)

    monkeypatch.setattr(engine_module, "build_batch", fragile)  # the batch builder the engine calls
    plan = [body("hello"), body("boom"), body("good day"), body("boom", stream=True), body("hi", stream=True)]

    async def run_all():
        async with httpx.AsyncClient(base_url=faulty.url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v1/chat/completions", json=p) for p in plan))

    with Blocked(engine) as blocked:  # all five queue behind it, then run as one batch
        replies: list[httpx.Response] = []
        runner = threading.Thread(target=lambda: replies.extend(asyncio.run(run_all())))
        runner.start()
        assert blocked.wait_pending(1 + len(plan))
    runner.join(120)
    good, bad, good_2, bad_stream, good_stream = replies
    for reply in (good, good_2):
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"], reply.text
    assert good_stream.status_code == 200 and '"finish_reason"' in good_stream.text
    assert bad.status_code == 500, bad.text
    assert bad.json()["error"]["type"] == "server_error" and "RuntimeError" in bad.json()["error"]["message"]
    assert '"type":"server_error"' in bad_stream.text and bad_stream.text.rstrip().endswith("data: [DONE]")


def test_requests_of_clients_that_hung_up_are_dropped(faulty):
    engine = faulty.app.state.serving.engine

    async def give_up(payload: dict) -> None:
        async with httpx.AsyncClient(base_url=faulty.url, timeout=1.0) as client:
            if payload["stream"]:
                async with client.stream("POST", "/v1/chat/completions", json=payload) as reply:
                    async for _ in reply.aiter_lines():
                        return  # the first event came: the request is queued; hang up
            else:
                with pytest.raises(httpx.ReadTimeout):
                    await client.post("/v1/chat/completions", json=payload)

    with Blocked(engine) as blocked:
        plan = [body(f"question {i}", stream=i % 2 == 1) for i in range(6)]

        async def run_all():
            await asyncio.gather(*(give_up(p) for p in plan))

        asyncio.run(run_all())
        assert blocked.wait_pending(1, seconds=10), f"{engine.pending - 1} abandoned requests still pending"
    assert post(faulty, body("still there?")).status_code == 200


def test_generation_stops_when_its_client_hangs_up(faulty):
    """A long answer (2000 tokens take the tiny model 7 s or more) stops soon after its client leaves."""
    engine = faulty.app.state.serving.engine
    long_answer = {**body("hello"), "max_tokens": 2000}

    async def stream_two_pieces_and_leave() -> None:
        async with httpx.AsyncClient(base_url=faulty.url, timeout=60) as client:
            async with client.stream("POST", "/v1/chat/completions", json={**long_answer, "stream": True}) as reply:
                lines = [line async for line in _first(reply.aiter_lines(), 6)]
        assert sum('"content"' in line for line in lines) >= 2

    for leave in (stream_two_pieces_and_leave, lambda: asyncio.to_thread(post, faulty, long_answer, 1.0)):
        try:
            asyncio.run(leave())
        except httpx.ReadTimeout:
            pass  # the non-streaming client gave up after 1 s
        left = time.monotonic()
        while engine.pending and time.monotonic() < left + 2:
            time.sleep(0.02)
        assert engine.pending == 0, f"still generating for nobody {time.monotonic() - left:.1f} s after the client left"


async def _first(lines, count: int):
    async for line in lines:
        if line:
            yield line
            count -= 1
            if not count:
                return


def test_bounded_load_with_streams_abandoned_clients_and_bombs(faulty, bombs):
    """~30 concurrent requests of every kind: no 500s, memory bounded, nothing left pending."""
    good = encoded(speechlike(0.8, seed=5), 16000)
    plan = (
        [(audio_body(good), 60.0)] * 8
        + [(audio_body(good, stream=True), 60.0)] * 6
        + [(body("one moment", stream=i % 2 == 0), 0.2) for i in range(6)]  # clients that give up
        + [(audio_body(data, fmt), 60.0) for data, fmt, _ in bombs.values()] * 3
        + [(body(LONG_TEXT), 60.0)] * 2
    )

    async def one(client: httpx.AsyncClient, payload: dict, timeout: float) -> int | None:
        try:
            reply = await client.post("/v1/chat/completions", json=payload, timeout=timeout)
        except httpx.TimeoutException:
            return None  # gave up
        return reply.status_code

    async def run_all():
        async with httpx.AsyncClient(base_url=faulty.url) as client:
            return await asyncio.gather(*(one(client, payload, timeout) for payload, timeout in plan))

    statuses, growth = peak_growth_mb(lambda: asyncio.run(run_all()))
    assert 500 not in statuses and 429 not in statuses, statuses
    assert statuses.count(200) >= 14 and statuses.count(400) == 8, statuses
    assert growth < 2 * MEMORY_BOUND_MB, f"the server's peak memory grew by {growth:.0f} MB under load"
    deadline = time.monotonic() + 30
    while faulty.app.state.serving.engine.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert faulty.app.state.serving.engine.pending == 0


def test_the_engine_builds_its_batches_without_autograd(faulty, monkeypatch):
    answer_batch = engine_module.answer_batch
    seen = []

    def recording(model, batch, *args, **kwargs):
        seen.append(batch.inputs_embeds.requires_grad)  # a graph through the projectors would be kept alive
        return answer_batch(model, batch, *args, **kwargs)

    monkeypatch.setattr(engine_module, "answer_batch", recording)
    reply = httpx.post(f"{faulty.url}/v1/chat/completions", json=audio_body(encoded(speechlike(0.8, seed=3), 16000)), timeout=120)
    assert reply.status_code == 200, reply.text
    assert seen == [False]

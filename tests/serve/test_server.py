"""The OpenAI-compatible server through real HTTP clients: the official ``openai`` client and httpx."""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from azeros.inference import ChatSession, EngineRequest, GenerationParams, Turn, chat, generate

from azeros.text import Message
from tests.sounds import speechlike

MAX = 12


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wav_bytes(wave: np.ndarray, rate: int = 16000, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format=fmt)
    return buffer.getvalue()


def audio_message(data: str, fmt: str = "wav", text: str | None = None) -> dict:
    content = [{"type": "input_audio", "input_audio": {"data": data, "format": fmt}}]
    if text:
        content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def test_openai_client_gets_the_python_api_answer(server, model, wavs):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    for wav in wavs[:2]:
        expected = chat(model, str(wav), params=GenerationParams(max_new_tokens=MAX))
        messages = [audio_message(b64(wav.read_bytes()))]
        reply = client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX)
        assert reply.choices[0].message.content == expected.text
        assert reply.choices[0].finish_reason == expected.finish_reason
        stream = client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX, stream=True)
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        assert len([p for p in pieces if p]) > 1 and "".join(pieces) == expected.text


def test_flac_and_multi_turn_match_the_python_api(server, model, wavs):
    session = ChatSession(model)
    first = session.ask(str(wavs[0]), params=GenerationParams(max_new_tokens=MAX))
    second = session.ask(str(wavs[1]), "And this?", GenerationParams(max_new_tokens=MAX))
    wave, rate = sf.read(wavs[1], dtype="float32")
    messages = [
        audio_message(b64(wavs[0].read_bytes())),
        {"role": "assistant", "content": first.text},
        audio_message(b64(wav_bytes(wave, rate, "FLAC")), "flac", "And this?"),
    ]
    reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers,
                       json={"model": "tiny", "messages": messages, "max_tokens": MAX}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == second.text


@pytest.mark.parametrize("system", ["default", "mode"])
def test_a_system_message_is_sent_to_the_llm_verbatim_even_when_it_reads_like_a_sentinel(server, system):
    """``default`` and ``mode`` once stood for the chat mode's system message inside azeros: a client that wrote
    either got the mode's prompt (here: none, so the template's own) instead of its text."""
    model = server.app.state.serving.engine.model
    prompts = []  # the token ids the LLM embeds, the prompt first
    hook = model.llm.get_input_embeddings().register_forward_pre_hook(lambda _, args: prompts.append(args[0][0].tolist()))
    try:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]
        reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers,
                           json={"model": "tiny", "messages": messages, "max_tokens": 2}, timeout=60)
    finally:
        hook.remove()
    assert reply.status_code == 200, reply.text
    assert prompts[0] == model.renderer.render([Message("system", (system,)), Message("user", ("hi",))]).input_ids
    assert f"<|im_start|>system\n{system}<|im_end|>" in model.tokenizer.decode(prompts[0])


def test_spoken_reply_when_asked(server, wavs):
    body = {"model": "tiny", "messages": [audio_message(b64(wavs[0].read_bytes()))], "max_tokens": MAX,
            "modalities": ["text", "audio"], "audio": {"voice": "default", "format": "wav"}}
    reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body, timeout=60).json()
    message = reply["choices"][0]["message"]
    spoken, rate = sf.read(io.BytesIO(base64.b64decode(message["audio"]["data"])))
    assert message["audio"]["transcript"] == message["content"] and rate > 0 and len(spoken) > rate // 10


def bad_requests(long_wave: bytes) -> dict[str, tuple[dict, int, str]]:
    """name -> (body, expected status, a phrase the error message must contain)."""
    good = b64(wav_bytes(speechlike(1.0)))
    return {
        "missing audio data": (
            {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}]}]},
            400, "input_audio.data: Field required"),
        "bad base64": ({"model": "tiny", "messages": [audio_message("not base64 !!")]}, 400, "not valid base64"),
        "undecodable audio": ({"model": "tiny", "messages": [audio_message(b64(b"RIFF0000WAVEjunk" * 8))]}, 400, "unreadable audio"),
        "audio over the limit": ({"model": "tiny", "messages": [audio_message(b64(long_wave))]}, 400, "too long"),
        "unknown model": ({"model": "gpt-9", "messages": [audio_message(good)]}, 400, "unknown model 'gpt-9'"),
        "ends with assistant": ({"model": "tiny", "messages": [audio_message(good), {"role": "assistant", "content": "hi"}]},
                                400, "last message must be a user message"),
        "empty user turn": ({"model": "tiny", "messages": [{"role": "user", "content": []}]}, 400, "needs audio or text"),
        "bad temperature": ({"model": "tiny", "messages": [audio_message(good)], "temperature": 7}, 400, "temperature"),
    }


@pytest.fixture(scope="module")
def long_wave() -> bytes:
    return wav_bytes(speechlike(4.0, seed=3))  # over the server's 3 s limit, under its 1 MiB body limit


def test_bad_inputs_get_400_with_a_reason(server, long_wave):
    for name, (body, status, phrase) in bad_requests(long_wave).items():
        reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body, timeout=60)
        assert reply.status_code == status, (name, reply.text)
        assert phrase in reply.json()["error"]["message"], (name, reply.text)


def test_auth_size_limit_and_health(server):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}]}
    assert httpx.post(f"{server.url}/v1/chat/completions", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{server.url}/v1/models", headers=wrong).status_code == 401
    huge = {"model": "tiny", "messages": [audio_message("A" * (2 * 1024 * 1024))]}
    reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=huge)
    assert reply.status_code == 413 and "over the limit" in reply.json()["error"]["message"]
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny"
    assert "<title>azeros</title>" in httpx.get(f"{server.url}/").text


def test_50_concurrent_requests_good_and_bad(server, model, long_wave):
    bad = list(bad_requests(long_wave).values())
    waves = [speechlike(0.5 + 0.1 * (i % 5), seed=i) for i in range(5)]
    good_audio = [b64(wav_bytes(wave)) for wave in waves]
    alone = [generate(model, [(w, 16000)], params=GenerationParams(max_new_tokens=MAX))[0].text for w in waves]
    plan = []
    for i in range(50):
        if i % 3 == 2:
            body, status, phrase = bad[i % len(bad)]
            plan.append((body, status, phrase))
        else:
            plan.append(({"model": "tiny", "messages": [audio_message(good_audio[i % 5])], "max_tokens": MAX,
                          "stream": i % 4 == 0}, 200, None))
    batches_before = server.app.state.serving.engine.batches_run

    async def run_all():
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for body, _, _ in plan))

    replies = asyncio.run(run_all())
    answered = 0
    for (body, status, phrase), reply in zip(plan, replies):
        assert reply.status_code == status, reply.text
        if phrase is not None:
            assert phrase in reply.json()["error"]["message"]
        elif body["stream"]:
            assert reply.text.rstrip().endswith("data: [DONE]") and '"finish_reason"' in reply.text
            answered += 1
        else:  # batched with strangers, answered as if alone (greedy)
            text = body["messages"][0]["content"][0]["input_audio"]["data"]
            assert reply.json()["choices"][0]["message"]["content"] == alone[good_audio.index(text)]
            answered += 1
    assert answered == sum(status == 200 for _, status, _ in plan) == 34
    batches = server.app.state.serving.engine.batches_run - batches_before
    assert batches < answered  # concurrent requests shared batches
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "model": "tiny", "pending": 0, "speak": True}


def test_full_queue_is_429(server):
    """With the engine's queue full, a request is refused at once with 429 (not queued)."""
    engine = server.app.state.serving.engine
    release = threading.Event()
    blocker = EngineRequest([Turn("user", "hold")], params=GenerationParams(max_new_tokens=2),
                            on_text=lambda _: release.wait(30))
    held = [engine.submit(blocker)]
    try:
        while engine.pending < engine.max_pending:
            held.append(engine.submit(EngineRequest([Turn("user", "wait")], params=GenerationParams(max_new_tokens=1))))
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}]}
        reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body, timeout=30)
        assert reply.status_code == 429 and "busy" in reply.json()["error"]["message"]
    finally:
        release.set()
    for future in held:
        future.result(timeout=60)
    assert httpx.get(f"{server.url}/health").json()["pending"] == 0

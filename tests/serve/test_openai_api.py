"""What the OpenAI API promises beyond the answer: token counts, stop texts, and a 400 for what it cannot do."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
import soundfile as sf

import azeros
from azeros.inference import EngineRequest, GenerationParams, Turn, chat, prompt_length
from azeros.serve.serving import StopText
from tests.serve.test_server import audio_message, b64, bad_requests, long_wave  # noqa: F401 (a fixture)

MAX = 24
QUESTION = "Tell me about the cat and the dog and the cat."


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key)


def test_usage_counts_the_prompt_positions_and_the_generated_tokens(client, model, wavs):
    wave, rate = sf.read(wavs[0], dtype="float32")
    assert rate == 16000
    expected_prompt = prompt_length(model, [Turn("user", None, [wave])])
    expected = chat(model, str(wavs[0]), params=GenerationParams(max_new_tokens=MAX))
    messages = [audio_message(b64(wavs[0].read_bytes()))]

    usage = client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (expected_prompt, len(expected.token_ids))
    assert usage.total_tokens == expected_prompt + len(expected.token_ids)

    stream = list(client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX, stream=True,
                                                 stream_options={"include_usage": True}))
    assert [c.usage is not None for c in stream] == [False] * (len(stream) - 1) + [True]
    assert stream[-1].choices == [] and stream[-1].usage == usage
    plain = list(client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX, stream=True))
    assert all(c.usage is None for c in plain)


def stop_cases(answer: str) -> list[tuple[str | list[str], str]]:
    """(stop, the expected cut answer) for a stop text inside the answer, a list of two, and an absent one."""
    middle = answer[len(answer) // 3:len(answer) // 3 + 3]
    later = answer[2 * len(answer) // 3:2 * len(answer) // 3 + 2]
    return [
        (middle, answer[:answer.index(middle)]),
        ([later, middle], answer[:min(answer.index(later), answer.index(middle))]),
        ("\x00never said", answer),
    ]


def test_stop_cuts_the_answer_before_the_stop_text(client, model):
    answer = chat(model, text=QUESTION, params=GenerationParams(max_new_tokens=MAX)).text
    assert len(answer) > 12, answer
    messages = [{"role": "user", "content": QUESTION}]
    for stop, cut in stop_cases(answer):
        stopped = cut != answer
        reply = client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX, stop=stop)
        assert reply.choices[0].message.content == cut, stop
        assert reply.choices[0].finish_reason == ("stop" if stopped else "length")
        assert (reply.usage.completion_tokens < MAX) == stopped  # generation ended at the stop text

        stream = list(client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX, stop=stop,
                                                     stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in stream) == cut, stop
        assert [c.choices[0].finish_reason for c in stream][-1] == ("stop" if stopped else "length")


def test_a_stop_text_split_across_pieces_is_held_back_until_it_is_settled():
    request = EngineRequest([Turn("user", "hi")])
    stop_text = StopText(["END", "ENOUGH"], request)
    assert [stop_text.feed(p) for p in ["abc E", "N", "D and more", "ignored"]] == ["abc ", "", "", ""]
    assert request.abandoned.is_set() and stop_text.rest() == ""
    passing = StopText(["xyz"], EngineRequest([Turn("user", "hi")]))
    assert [passing.feed(p) for p in ["ab x", "ya", "bx"]] == ["ab ", "xya", "b"] and passing.rest() == "x"
    assert not passing.request.abandoned.is_set()


REFUSED = {
    "n": 2, "logprobs": True, "top_logprobs": 2, "tools": [{"type": "function", "function": {"name": "f"}}],
    "tool_choice": "auto", "functions": [{"name": "f"}], "function_call": "auto",
    "response_format": {"type": "json_object"}, "logit_bias": {"42": 5}, "presence_penalty": 0.5,
    "frequency_penalty": 0.5, "prediction": {"type": "content", "content": "x"}, "some_new_option": 1,
}


def no_internals(message: str) -> bool:
    """An error message shows no Python object reprs and no server paths."""
    return "object at 0x" not in message and "<class" not in message and str(Path(azeros.__file__).parents[1]) not in message


@pytest.mark.parametrize("name", REFUSED)
def test_each_unsupported_parameter_is_a_400_naming_it(server, name):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, name: REFUSED[name]}
    reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body, timeout=60)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == name and name in error["message"] and no_internals(error["message"])


def test_refusals_show_no_internals(server, long_wave):  # noqa: F811
    for name, (body, status, _) in bad_requests(long_wave).items():
        reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body, timeout=60)
        assert reply.status_code == status and no_internals(reply.json()["error"]["message"]), (name, reply.text)


def test_an_image_is_a_400_naming_the_content(server):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}]}
    reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body, timeout=60)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == "messages.0.content" and "image_url content is not supported" in error["message"]


def test_parameters_that_ask_for_nothing_are_accepted(server):
    harmless = {"n": 1, "logprobs": False, "tools": [], "tool_choice": "none", "presence_penalty": 0,
                "frequency_penalty": 0.0, "response_format": {"type": "text"}, "user": "someone", "store": False,
                "metadata": {"k": "v"}, "top_logprobs": None}
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **harmless}
    reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body, timeout=60)
    assert reply.status_code == 200, reply.text

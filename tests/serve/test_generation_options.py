"""Generation options of a chat request: the repetition penalty means what it means everywhere."""

from __future__ import annotations

import openai
import pytest
from pydantic import ValidationError

from azeros.inference import GenerationParams, chat
from azeros.serve.protocol import ChatCompletionRequest

MAX = 12


def test_request_repetition_penalty_reaches_generation(server, model, wavs):
    request = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    assert ChatCompletionRequest(**request).to_params(16, 64).repetition_penalty is None  # the LLM's own
    assert ChatCompletionRequest(**request, repetition_penalty=1.05).to_params(16, 64).repetition_penalty == 1.05
    with pytest.raises(ValidationError):
        ChatCompletionRequest(**request, repetition_penalty=0)

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key)
    messages = [{"role": "user", "content": "Tell me about the cat and the dog and the cat."}]
    answers = set()
    for penalty in (0.2, 1.0, 3.0):
        expected = chat(model, text=messages[0]["content"],
                        params=GenerationParams(max_new_tokens=MAX, repetition_penalty=penalty))
        reply = client.chat.completions.create(model="tiny", messages=messages, max_tokens=MAX,
                                               extra_body={"repetition_penalty": penalty})
        assert reply.choices[0].message.content == expected.text
        answers.add(expected.text)
    assert len(answers) > 1  # the penalty changes answers

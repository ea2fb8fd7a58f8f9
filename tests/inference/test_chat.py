"""The Python API: one-off chat, multi-turn sessions that reuse the KV cache, token streaming."""

from __future__ import annotations

import pytest

from azeros.inference import (
    ChatSession,
    GenerationParams,
    Turn,
    answer_batch,
    chat,
    conversation_of,
    generate,
    prompt_length,
    stream_chat,
)
from azeros.models import build_batch, encode_audio
from azeros.text import MODE_SYSTEM, Message

MAX = 12
PARAMS = GenerationParams(max_new_tokens=MAX)


def test_chat_is_generate(model, wavs):
    """``chat`` on a wav gives what the batched ``generate`` gives for it (greedy)."""
    batched = generate(model, [str(w) for w in wavs], params=PARAMS)
    for wav, expected in zip(wavs, batched):
        answer = chat(model, str(wav), params=PARAMS)
        assert answer.token_ids == expected.token_ids and answer.text == expected.text
    assert len({a.text for a in batched}) > 1  # the audio matters


def _from_scratch(model, turns):
    messages, waves = conversation_of(model, turns)
    batch = build_batch(model, [messages], encode_audio(model, [waves]), padding_side="left")
    return answer_batch(model, batch, PARAMS)[0]


def test_second_turn_reuses_cache_and_matches_full_rerender(model, wavs):
    session = ChatSession(model)
    first = session.ask(str(wavs[0]), params=PARAMS)
    cached_after_first = session.cached_positions
    fed = []  # positions given to the LLM by each forward call
    hook = model.llm.register_forward_pre_hook(
        lambda _, args, kwargs: fed.append(kwargs["inputs_embeds"].shape[1] if kwargs.get("inputs_embeds") is not None
                                           else kwargs["input_ids"].shape[1]),
        with_kwargs=True,
    )
    try:
        second = session.ask(str(wavs[1]), "And this one?", PARAMS)
    finally:
        hook.remove()

    # The second prefill fed at most the first answer and the new turn: the first prompt came from the
    # cache (the answer's tokens are reused as far as their re-rendering agrees with them).
    assert cached_after_first > prompt_length(model, session.turns[:1])
    assert fed[0] <= prompt_length(model, session.turns[:3]) - prompt_length(model, session.turns[:1])
    # Same greedy answer as rendering the whole history from scratch with the prompt policy.
    turns = session.turns[:3]
    assert [t.role for t in turns] == ["user", "assistant", "user"] and turns[1].text == first.text
    assert _from_scratch(model, turns).token_ids == second.token_ids
    # The i-th audio of the conversation sits in slots with audio_index=i.
    messages, waves = conversation_of(model, turns)
    indices = [p.audio_index for m in messages for p in m.parts if not isinstance(p, str)]
    assert indices == [0, 1] and len(waves) == 2


def test_text_only_turn_and_history_argument(model, wavs):
    session = ChatSession(model)
    chat(model, str(wavs[2]), history=session, params=PARAMS)
    answer = chat(model, text="Say it again.", history=session, params=PARAMS)
    assert _from_scratch(model, session.turns[:3]).token_ids == answer.token_ids
    assert len(session.turns) == 4


def test_session_from_earlier_turns(model, wavs):
    """A session started from a given history answers like one that lived through it."""
    lived = ChatSession(model)
    lived.ask(str(wavs[0]), params=PARAMS)
    expected = lived.ask(text="Why?", params=PARAMS)
    restored = ChatSession(model, turns=[Turn(t.role, t.text, list(t.audios)) for t in lived.turns[:3]])
    assert restored.respond(PARAMS).token_ids == expected.token_ids


def test_stream_chat_pieces_join_to_the_answer(model, wavs):
    pieces = list(stream_chat(model, str(wavs[0]), params=PARAMS))
    assert len(pieces) > 1
    assert "".join(pieces) == chat(model, str(wavs[0]), params=PARAMS).text


@pytest.mark.parametrize("system", ["default", "mode"])
def test_a_system_text_that_reads_like_a_sentinel_reaches_the_llm_verbatim(model, system):
    """Only the object MODE_SYSTEM stands for the chat mode's system message; no text a user can send does."""
    messages, _ = conversation_of(model, [Turn("user", "hi")], system)
    assert messages == [Message("system", (system,)), Message("user", ("hi",))]
    assert conversation_of(model, [Turn("user", "hi")], MODE_SYSTEM)[0] == [Message("user", ("hi",))]  # sift_s: none
    prompts = []  # the token ids the LLM embeds, the prompt first
    hook = model.llm.get_input_embeddings().register_forward_pre_hook(lambda _, args: prompts.append(args[0][0].tolist()))
    try:
        chat(model, text="hi", system=system, params=GenerationParams(max_new_tokens=2))
    finally:
        hook.remove()
    assert prompts[0] == model.renderer.render(messages).input_ids

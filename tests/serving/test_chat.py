"""The Python API: one-off chat, multi-turn sessions that reuse the KV cache, token streaming."""

from __future__ import annotations

from azeros.models.chat import ChatSession, GenerationParams, Turn, build_conversation, generate_answers

MAX = 12


def test_chat_is_generate(model, wavs):
    """``model.chat`` on a wav gives what the batched ``generate`` gives for it (greedy)."""
    batched = model.generate([str(w) for w in wavs], max_new_tokens=MAX)
    for wav, expected in zip(wavs, batched):
        answer = model.chat(str(wav), max_new_tokens=MAX)
        assert answer.token_ids == expected.token_ids and answer.text == expected.text
    assert len({a.text for a in batched}) > 1  # the audio matters


def _from_scratch(model, turns):
    messages, waves = build_conversation(model, turns)
    batch = model.prepare([messages], [waves], padding_side="left")
    return generate_answers(model, batch, GenerationParams(max_new_tokens=MAX))[0]


def test_second_turn_reuses_cache_and_matches_full_rerender(model, wavs):
    session = ChatSession(model)
    first = session.ask(str(wavs[0]), max_new_tokens=MAX)
    cached_after_first = session.cached_positions
    fed = []  # positions given to the LLM by each forward call
    hook = model.llm.register_forward_pre_hook(
        lambda _, args, kwargs: fed.append(kwargs["inputs_embeds"].shape[1] if kwargs.get("inputs_embeds") is not None
                                           else kwargs["input_ids"].shape[1]),
        with_kwargs=True,
    )
    try:
        second = session.ask(str(wavs[1]), "And this one?", max_new_tokens=MAX)
    finally:
        hook.remove()

    # The second prefill fed at most the first answer and the new turn: the first prompt came from the
    # cache (the answer's tokens are reused as far as their re-rendering agrees with them).
    def prompt_length(turns):
        messages, waves = build_conversation(model, turns)
        return len(model.render(messages, [len(w) for w in waves]).input_ids)

    assert cached_after_first > prompt_length(session.turns[:1])
    assert fed[0] <= prompt_length(session.turns[:3]) - prompt_length(session.turns[:1])
    # Same greedy answer as rendering the whole history from scratch with the prompt policy.
    turns = session.turns[:3]
    assert [t.role for t in turns] == ["user", "assistant", "user"] and turns[1].text == first.text
    assert _from_scratch(model, turns).token_ids == second.token_ids
    # The i-th audio of the conversation sits in slots with audio_index=i.
    messages, waves = build_conversation(model, turns)
    indices = [p.audio_index for m in messages for p in m.parts if not isinstance(p, str)]
    assert indices == [0, 1] and len(waves) == 2


def test_text_only_turn_and_history_argument(model, wavs):
    session = ChatSession(model)
    model.chat(str(wavs[2]), history=session, max_new_tokens=MAX)
    answer = model.chat(text="Say it again.", history=session, max_new_tokens=MAX)
    assert _from_scratch(model, session.turns[:3]).token_ids == answer.token_ids
    assert len(session.turns) == 4


def test_session_from_earlier_turns(model, wavs):
    """A session started from a given history answers like one that lived through it."""
    lived = ChatSession(model)
    lived.ask(str(wavs[0]), max_new_tokens=MAX)
    expected = lived.ask(text="Why?", max_new_tokens=MAX)
    restored = ChatSession(model, turns=[Turn(t.role, t.text, list(t.audios)) for t in lived.turns[:3]])
    assert restored.respond(GenerationParams(max_new_tokens=MAX)).token_ids == expected.token_ids


def test_stream_chat_pieces_join_to_the_answer(model, wavs):
    pieces = list(model.stream_chat(str(wavs[0]), max_new_tokens=MAX))
    assert len(pieces) > 1
    assert "".join(pieces) == model.chat(str(wavs[0]), max_new_tokens=MAX).text

"""The one prompt policy: target generation, training and inference agree token for token."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from azeros.text import (
    IGNORE_INDEX,
    MODES,
    PromptRenderer,
    instruction_for,
    meta_text,
    speaker_meta,
    target_messages,
)
from azeros.models import render
from tests.conftest import noise, oracle_prompt, question, tiny_speech_llm

TRANSCRIPT = "what shall we do if they suddenly walk in on us."
META = speaker_meta({"gender": "male", "emotion": "happy", "age": 31})


@pytest.fixture(scope="module")
def one_encoder(tokenizer):
    return tiny_speech_llm(tokenizer)


@pytest.fixture(scope="module")
def two_encoders(tokenizer):
    return tiny_speech_llm(tokenizer, paralinguistic=True)


def outside_audio(ids, spans):
    """The pieces of a token sequence before, between and after its audio spans."""
    pieces, cursor = [], 0
    for span in spans:
        pieces.append(ids[cursor : span.start])
        cursor = span.start + span.length
    return [*pieces, ids[cursor:]]


@pytest.mark.parametrize("mode", ["sift_s", "sit_s", "sift_sp", "sit_sp", "sift_ssp", "sit_ssp", "tsit_s"])
@pytest.mark.parametrize("encoders", ["one_encoder", "two_encoders"])
def test_generation_training_and_inference_agree_outside_the_audio(mode, encoders, request):
    model = request.getfixturevalue(encoders)
    renderer = model.renderer
    # 1. target generation: oracle text in place, as the frozen LLM read it
    messages = target_messages(MODES[mode], TRANSCRIPT, META, language="en", key="cut-1")
    generation = renderer.render(messages).input_ids
    system = messages[0].parts[0] if messages[0].role == "system" else None
    instruction = instruction_for(MODES[mode], "en", key="cut-1")
    # 2. training: the stored system and instruction, this model's slots, audio in place, the answer
    training_messages = target_messages(
        MODES[mode], TRANSCRIPT, META, system=system, instruction=instruction, encoders=model.roles
    )
    training = render(model, training_messages, [16000 * 3], answer="Sure.")
    prompt = training.input_ids[: training.prompt_length]
    pieces = outside_audio(prompt, training.audio_spans)
    assert training.audio_spans and len(pieces) == len(training.audio_spans) + 1
    if len(pieces) == 3 and MODES[mode].oracle == "s":
        # two encoders hear an s utterance through both, in the sp layout (the oracle's tags added):
        # the context around the audio is still the generation's, verbatim
        sp_layout = "<audio><meta></meta><text></text></audio>"
        assert renderer.tokenizer.decode([t for piece in pieces for t in piece]) == oracle_prompt(renderer.tokenizer, messages).replace(TRANSCRIPT, sp_layout)
    else:
        # every piece outside the audio is in the generation tokens, in place, with the oracle in between
        assert generation[: len(pieces[0])] == pieces[0]
        assert generation[len(generation) - len(pieces[-1]) :] == pieces[-1]
    if len(pieces) == 3 and MODES[mode].oracle == "sp":  # <meta>[paralinguistic]</meta><text>[semantic]</text>
        meta_tokens = tokenizer_ids(renderer, meta_text(META))
        start = len(pieces[0]) + len(meta_tokens)
        assert generation[start : start + len(pieces[1])] == pieces[1]
        text_tokens = tokenizer_ids(renderer, TRANSCRIPT)
        assert start + len(pieces[1]) + len(text_tokens) + len(pieces[2]) == len(generation)
    # the text-server path (one string, tokenized whole) gives the same tokens as the piecewise render
    whole = tokenizer_ids(renderer, oracle_prompt(renderer.tokenizer, messages))
    assert whole == generation
    # 3. inference in this mode's context, the instruction as the user's text: exactly the training prompt
    default, model.chat_mode = model.chat_mode, MODES[mode]
    try:
        asked = question(model, instruction if MODES[mode].instruction is not None else None)
        assert render(model, asked, [16000 * 3]).input_ids == prompt
    finally:
        model.chat_mode = default


def tokenizer_ids(renderer, text):
    return renderer.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_labels_supervise_only_the_answer_and_its_end(tokenizer):
    renderer = PromptRenderer(tokenizer)
    messages = target_messages(MODES["sift_s"], TRANSCRIPT, None)
    chat = renderer.render(messages, answer="Hide under the table!")
    answer_ids = tokenizer("Hide under the table!", add_special_tokens=False)["input_ids"]
    assert chat.labels[: chat.prompt_length] == [IGNORE_INDEX] * chat.prompt_length
    assert chat.labels[chat.prompt_length :] == answer_ids + [renderer.end_of_turn_id]
    assert tokenizer.convert_ids_to_tokens(renderer.end_of_turn_id) == "<|im_end|>"
    cut_short = renderer.render(messages, answer="Hide under the table!", finished=False)
    assert cut_short.labels[cut_short.prompt_length :] == answer_ids  # no end token for a cut-short answer
    # our prompt + answer + end is what the template itself writes for the finished conversation
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": TRANSCRIPT}, {"role": "assistant", "content": "Hide under the table!"}],
        tokenize=False,
    )
    assert full.startswith(tokenizer.decode(chat.input_ids))


def test_no_trailing_space_without_an_instruction(tokenizer):
    renderer = PromptRenderer(tokenizer)
    text = oracle_prompt(tokenizer, target_messages(MODES["sift_s"], TRANSCRIPT, None))
    assert f"{TRANSCRIPT}<|im_end|>" in text
    text = oracle_prompt(tokenizer, target_messages(MODES["sit_s"], TRANSCRIPT, None))
    assert f"{TRANSCRIPT} Repeat the above content.<|im_end|>" in text


def test_a_meta_slot_is_empty_only_where_the_sp_oracle_showed_no_labels(two_encoders):
    messages = target_messages(MODES["sift_sp"], TRANSCRIPT, {}, encoders=two_encoders.roles)
    chat = render(two_encoders, messages, [16000 * 2])
    assert [s.encoder for s in chat.audio_spans] == ["semantic"]  # nothing was said about the speaker
    messages = target_messages(MODES["sift_s"], TRANSCRIPT, META, encoders=two_encoders.roles)
    chat = render(two_encoders, messages, [16000 * 2])
    assert [s.encoder for s in chat.audio_spans] == ["paralinguistic", "semantic"]  # s: never said anything


@settings(max_examples=20, deadline=None)
@given(seconds=st.floats(min_value=0.1, max_value=30.0))
@example(seconds=0.1)
@example(seconds=0.25)
@example(seconds=0.4)
def test_audio_positions_equal_projected_frames(two_encoders, seconds):
    model = two_encoders
    wave = noise(seconds, seed=int(seconds * 1000))
    chat = render(model, question(model, "hi"), [wave.size])
    projected = model.project(model.encode([wave]))
    # Whisper gives 12.5 positions a second (one from 0.1 s on); GE2E 2.5 a second (one from 0.4 s on)
    shortest = {"semantic": 0.1, "paralinguistic": 0.4}
    for span in chat.audio_spans:
        assert span.length == projected[span.encoder][0].shape[0]
        assert span.length > 0 or seconds < shortest[span.encoder]
    assert sum(s.length for s in chat.audio_spans) == sum(p[0].shape[0] for p in projected.values())
    assert chat.input_ids.count(model.renderer.placeholder_id) >= sum(s.length for s in chat.audio_spans)

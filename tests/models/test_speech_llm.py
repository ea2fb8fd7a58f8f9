"""SpeechLLM on tiny random models: frozen parts, batch == single, save/load, labels, errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from azeros.audio import AudioError
from azeros.errors import ConfigError
from azeros.inference import GenerationParams, generate
from azeros.models import (
    EncoderSpec,
    GE2EEncoder,
    Projector,
    SpeechLLM,
    SpeechLLMConfig,
    WhisperEncoder,
    build_batch,
    encode_audio,
    load_model,
    load_projectors,
    projector_state,
    render,
    save_model,
)
from azeros.models.encoders import ZipformerEncoder
from azeros.text import MODES, target_messages
from tests.conftest import FAMILIES, TINY_WHISPER, TINY_ZIPFORMER, noise, question, tiny_llm, tiny_speech_llm

SECONDS = [0.5, 1.0, 1.7, 2.3, 0.8, 3.1, 1.2, 2.9]
TEXTS = [None, "What is this about?", None, "Answer in one word.", None, None, "Repeat it.", None]


@pytest.mark.parametrize("paralinguistic", [False, True])
def test_only_projectors_train(tokenizer, paralinguistic, capsys):
    model = tiny_speech_llm(tokenizer, paralinguistic=paralinguistic)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("projectors.") for name in trainable)
    assert len(trainable) == 4 * len(model.roles)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert f"{count:,} trainable parameters" in model.describe()
    assert "semantic: 128 -> 64 -> 64" in model.describe()
    model.train()
    assert model.projectors.training and not model.llm.training
    assert not any(m.training for m in model.encoders.modules())


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_batch_generation_equals_one_at_a_time(tokenizer, family):
    model = tiny_speech_llm(tokenizer, family, paralinguistic=True)
    audios = [(noise(s, seed=i), 16000) for i, s in enumerate(SECONDS)]
    batch = generate(model, audios, TEXTS, params=GenerationParams(max_new_tokens=12))
    alone = [generate(model, [a], [t], params=GenerationParams(max_new_tokens=12))[0] for a, t in zip(audios, TEXTS)]
    assert [a.text for a in batch] == [a.text for a in alone]
    assert [a.token_ids for a in batch] == [a.token_ids for a in alone]
    assert len({a.text for a in batch}) > 4  # answers depend on the audio
    assert all(a.finish_reason in ("stop", "length") for a in batch)


def test_repetition_penalty_means_what_transformers_means_and_batches_exactly(tokenizer):
    model = tiny_speech_llm(tokenizer, paralinguistic=True)
    model.llm.generation_config.repetition_penalty = 0.3  # the LLM's own default (Qwen2.5 ships 1.05); < 1 repeats
    # Text only: the same prompt ids through HF generate give the reference meaning of the number.
    texts = ["Hello there.", "Tell me a story about a cat and a dog."]
    for penalty in (None, 1.0, 3.0):
        want = 0.3 if penalty is None else penalty
        for text in texts:
            ids = render(model, question(model, text, audio=False), []).input_ids
            hf = model.llm.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=10, repetition_penalty=want,
                                    eos_token_id=model.renderer.stop_ids, pad_token_id=model.renderer.stop_ids[0])
            ours = generate(model, [None], [text], params=GenerationParams(max_new_tokens=10, repetition_penalty=penalty))[0]
            stop = next((i for i, t in enumerate(hf[0, len(ids):].tolist()) if t in model.renderer.stop_ids), None)
            assert ours.token_ids == hf[0, len(ids):].tolist()[:stop]
    plain = generate(model, [None], [texts[1]], params=GenerationParams(max_new_tokens=10, repetition_penalty=1.0))[0]
    assert plain.token_ids != generate(model, [None], [texts[1]], params=GenerationParams(max_new_tokens=10))[0].token_ids
    # With audio: batched answers equal one-at-a-time answers under the penalty.
    audios = [(noise(s, seed=i), 16000) for i, s in enumerate(SECONDS)]
    batch = generate(model, audios, TEXTS, params=GenerationParams(max_new_tokens=12, repetition_penalty=1.3))
    alone = [generate(model, [a], [t], params=GenerationParams(max_new_tokens=12, repetition_penalty=1.3))[0] for a, t in zip(audios, TEXTS)]
    assert [a.token_ids for a in batch] == [a.token_ids for a in alone]
    assert "repetition_penalty 0.3" in model.describe()


def test_text_only_and_audio_items_mix(tokenizer):
    model = tiny_speech_llm(tokenizer)
    answers = generate(model, [None, (noise(1.0), 16000)], ["Hello there.", None], params=GenerationParams(max_new_tokens=5))
    alone = generate(model, [None], ["Hello there."], params=GenerationParams(max_new_tokens=5))
    assert answers[0].text == alone[0].text


def test_save_and_load_reproduce_logits_exactly(tokenizer, tmp_path):
    model = tiny_speech_llm(tokenizer, paralinguistic=True)
    waves = [noise(1.3, seed=1), noise(2.2, seed=2)]
    conversations = [question(model, "Who speaks?"), question(model)]

    def logits(m):
        batch = build_batch(m, conversations, encode_audio(m, [[w] for w in waves]), answers=["A man.", "Hello."])
        return m(batch, return_logits=True).logits

    folder = save_model(model, tmp_path / "model", include_llm=True)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "azeros" and config["llm"] == "llm"
    assert {e["role"] for e in config["encoders"]} == {"semantic", "paralinguistic"}
    loaded = load_model(folder)
    assert torch.equal(logits(model), logits(loaded))
    # projector-only by default: the weights file holds the projectors and nothing else
    keys = set(load_file(folder / "model.safetensors"))
    assert keys == {
        f"{prefix}.{layer}.{kind}"
        for prefix in ("speech_encoder_projector", "paraling_encoder_projector")
        for layer in ("linear1", "linear2")
        for kind in ("weight", "bias")
    }


def test_non_finite_projector_weights_are_never_saved(tokenizer, tmp_path):
    model = tiny_speech_llm(tokenizer)
    with torch.no_grad():
        model.projectors["semantic"].linear2.bias[3] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite values: speech_encoder_projector.linear2.bias"):
        save_model(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_reference_checkpoints_and_partial_weights(tokenizer, tmp_path):
    model = tiny_speech_llm(tokenizer, paralinguistic=True)
    state = projector_state(model)
    torch.save({"state_dict": state}, tmp_path / "pretrained.pt")  # the reference's wrapping
    other = tiny_speech_llm(tokenizer, paralinguistic=True, seed=5)
    loaded = load_projectors(other, tmp_path)
    assert len(loaded) == 8
    assert all(torch.equal(projector_state(other)[k], v) for k, v in state.items())
    # a checkpoint without the paralinguistic projector: refused, and nothing changes
    partial = {k: v for k, v in state.items() if k.startswith("speech_")}
    torch.save(partial, tmp_path / "partial.pt")
    fresh = tiny_speech_llm(tokenizer, paralinguistic=True, seed=7)
    before = projector_state(fresh)
    with pytest.raises(ValueError, match="paralinguistic projector is missing"):
        load_projectors(fresh, tmp_path / "partial.pt")
    assert all(torch.equal(projector_state(fresh)[k], v) for k, v in before.items())
    assert load_projectors(fresh, tmp_path / "partial.pt", roles=["semantic"])  # what stage 2 asks for
    with pytest.raises(FileNotFoundError, match="no projector weights"):
        load_projectors(fresh, tmp_path / "nowhere")


def test_a_broken_model_folder_is_named_in_one_clear_error(tokenizer, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match=f"{folder / 'model.safetensors'}: not a readable safetensors file"):
        load_projectors(tiny_speech_llm(tokenizer), folder)
    for text, problem in [('{"llm": "x",', "not valid JSON"), ("[1]", "expected a JSON object, got list")]:
        (folder / "config.json").write_text(text)
        with pytest.raises(ConfigError, match=f"{folder / 'config.json'}: {problem}"):
            load_model(folder)


def test_unknown_config_keys_are_ignored_with_a_warning_listing_them(caplog):
    data = {"model_type": "azeros", "llm": "x", "question_mode": "sift_s", "chat_mod": "sift_sp", "zeal": 1,
            "encoders": [{"kind": "whisper", "rol": "paralinguistic"}]}
    with caplog.at_level(logging.WARNING, logger="azeros"):
        config = SpeechLLMConfig.from_dict(data, source="m/config.json")
    assert config.chat_mode is None and config.encoders[0].role == "semantic"
    assert [r.getMessage() for r in caplog.records] == [
        "m/config.json: ignoring unknown keys: chat_mod, zeal",  # model_type, question_mode: known, not settings
        "m/config.json: encoder 0: ignoring unknown keys: rol",
    ]


def test_training_loss_reaches_only_the_projectors(tokenizer):
    model = tiny_speech_llm(tokenizer, "qwen2", paralinguistic=True).train()
    messages = target_messages(MODES["sift_sp"], "hello there", {"gender": "female"}, encoders=model.roles)
    batch = build_batch(model, [messages, messages], encode_audio(model, [[noise(1.0)], [noise(2.0, seed=3)]]),
                        answers=["Hi! How can I help?", "Hi"], finished=[True, False])
    supervised = (batch.labels != -100).sum(dim=1).tolist()
    hi = len(model.tokenizer("Hi", add_special_tokens=False)["input_ids"])
    assert supervised[1] == hi  # cut short: no end-of-turn token
    assert supervised[0] == len(model.tokenizer("Hi! How can I help?", add_special_tokens=False)["input_ids"]) + 1
    out = model(batch, return_logits=True)
    loss = out.loss
    loss.backward()
    # the loss over supervised positions only equals cross-entropy over the full logits
    full = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), batch.labels[:, 1:].flatten())
    torch.testing.assert_close(loss, full)
    assert out.tokens == sum(supervised)
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projectors.parameters())
    assert all(p.grad is None for p in model.llm.parameters())


def test_embed_refuses_a_count_mismatch(tokenizer):
    model = tiny_speech_llm(tokenizer)
    chat = render(model, question(model), [16000])
    (span,) = chat.audio_spans
    wrong = {(0, "semantic"): torch.zeros(span.length + 1, 64)}
    with pytest.raises(ValueError, match=f"has {span.length + 1} projected frames but the prompt holds {span.length}"):
        model.embed([chat], [wrong])


@pytest.mark.parametrize(
    "encoder", [WhisperEncoder(config=TINY_WHISPER), GE2EEncoder(seed=3), ZipformerEncoder(config=TINY_ZIPFORMER)]
)
def test_encoders_give_the_promised_frames_alone_or_batched(encoder):
    waves = [noise(s, seed=i) for i, s in enumerate([0.1, 0.37, 1.0, 2.55, 7.0])]
    frames, lengths = encoder(waves)
    assert lengths.tolist() == [encoder.num_frames(w.size) for w in waves]
    assert frames.shape == (5, max(lengths), encoder.dim)
    for i, wave in enumerate(waves):
        alone, n = encoder([wave])
        torch.testing.assert_close(frames[i, : lengths[i]], alone[0, : n[0]], atol=1e-5, rtol=1e-5)
        assert frames[i, lengths[i] :].abs().sum() == 0
    assert encoder.fingerprint() == type(encoder)(**encoder.config()).fingerprint()


def test_whisper_covers_30_seconds_without_padding():
    encoder = WhisperEncoder(config=TINY_WHISPER)
    assert encoder.num_frames(30 * 16000) == 1500
    assert encoder.num_frames(16000) == 50
    frames, lengths = encoder([noise(30.0)])
    assert lengths.tolist() == [1500]


def test_projector_stacks_frames_in_time_order():
    projector = Projector(2, 3, stack=4)
    frames = torch.arange(2 * 9 * 2, dtype=torch.float32).reshape(2, 9, 2)  # [b, t, d]
    out, lengths = projector(frames, torch.tensor([9, 6]))
    assert out.shape == (2, 2, 3) and lengths.tolist() == [2, 1]
    with torch.no_grad():
        projector.linear1.weight.zero_()
        projector.linear1.weight[0, 2] = 1.0  # picks dim 0 of the second frame of a group
        projector.linear1.bias.zero_()
        projector.linear2.weight.copy_(torch.eye(3))
        projector.linear2.bias.zero_()
    out, _ = projector(frames, torch.tensor([9, 9]))
    assert out[0, :, 0].tolist() == [frames[0, 1, 0].item(), frames[0, 5, 0].item()]


def test_context_layers_let_a_position_see_the_others_alone_or_batched():
    frames = torch.randn(2, 24, 8, generator=torch.Generator().manual_seed(0))  # [b, t, d]
    lengths = torch.tensor([24, 14])
    frames[1, 14:] = 0.0
    later = frames.clone()
    later[:, 12:14] += 1.0  # only frames of the last stack of row 1 (and the middle of row 0) change
    plain = Projector(8, 32, stack=2, hidden=64)
    seeing = Projector(8, 32, stack=2, hidden=64, context_layers=2)
    for projector in (plain, seeing):
        projector.eval()
    first = lambda projector, x: projector(x, lengths)[0][:, 0]  # noqa: E731  [b, H], position 0
    assert torch.equal(first(plain, frames), first(plain, later))  # 2 frames at a time: blind to later frames
    assert not torch.allclose(first(seeing, frames), first(seeing, later))  # sees them
    out, counts = seeing(frames, lengths)
    alone, _ = seeing(frames[1:, :14], lengths[1:])  # padding changes nothing
    assert counts.tolist() == [12, 7] and torch.allclose(alone[0], out[1, :7], atol=1e-5)
    assert seeing(frames[:, :1], torch.tensor([1, 1]))[0].shape == (2, 0, 32)  # shorter than one stack
    with pytest.raises(ValueError, match="multiple of 64"):
        Projector(8, 32, hidden=96, context_layers=1)


def test_reset_parameters_draws_every_weight_from_the_seed():
    def drawn(noise_first: int) -> dict:
        torch.manual_seed(noise_first)  # whatever the RNG did before the model was built
        projector = Projector(8, 32, stack=2, hidden=64, compress=True, context_layers=1)
        torch.manual_seed(0)
        projector.reset_parameters()
        return projector.state_dict()

    a, b = drawn(1), drawn(2)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def test_compression_keeps_one_position_per_token_run_and_the_span_length():
    projector = Projector(8, 64, stack=2, compress=True)
    vocabulary = torch.randn(20, 64, generator=torch.Generator().manual_seed(0))  # [V, H], far apart
    with torch.no_grad():
        projector.blank.copy_(vocabulary[0])  # the blank's direction
    tokens = [[3, 3, 0, 5, 5, 0, 5, 1], [2, 2, 2, 2, 0, 0, 0, 0]]  # 0 stands for blank positions
    projected = vocabulary[torch.tensor(tokens)].clone().requires_grad_()  # [b, n, H]
    filler = torch.full((64,), 9.0)
    out = projector.compress(projected, torch.tensor([8, 4]), vocabulary[1:], filler)
    assert out.shape == projected.shape  # the prompt's audio positions do not move
    # a blank between two equal tokens makes two of them (CTC), a repeat without one makes one
    expected = [vocabulary[[3, 5, 5, 1]], vocabulary[[2]]]
    for row, kept in enumerate(expected):
        assert torch.allclose(out[row, : len(kept)], kept, atol=1e-4)  # the posterior is sure here
        assert torch.equal(out[row, len(kept):], filler.expand(8 - len(kept), -1))
    # what it heard, greedy CTC (ids into the vocabulary passed: token t is t - 1 here)
    assert projector.heard(projected, torch.tensor([8, 4]), vocabulary[1:]) == [[2, 4, 4, 0], [1]]
    # only the first 4 positions of row 1 are valid; the rest, though token-like, are padding
    alone = projector.compress(projected[1:, :4], torch.tensor([4]), vocabulary[1:], filler)
    assert torch.equal(alone[0], out[1, :4])
    out.sum().backward()  # the LLM's gradient reaches every kept position, never a dropped one
    reached = projected.grad.abs().sum(-1) > 0  # [b, n]
    assert reached.tolist() == [[True, True, False, True, True, False, True, True], [True] * 4 + [False] * 4]
    with pytest.raises(ValueError, match="without compress"):
        Projector(8, 64).compress(projected, torch.tensor([8, 4]), vocabulary, filler)
    # where the projector is unsure, the LLM reads a mixture of the likely tokens' embeddings
    units = torch.nn.functional.normalize(vocabulary, dim=-1)
    between = (units[3] + units[4])[None, None].expand(1, 2, -1)  # one run, equally near 3 and 4
    mixed = projector.compress(between, torch.tensor([2]), units[1:], filler)[0, 0]
    assert torch.allclose(mixed, (units[3] + units[4]) / 2, atol=1e-3)


def test_a_sharp_read_out_gives_the_llm_the_token_heard_not_a_blend_of_the_vocabulary():
    # Over a large vocabulary, the alignment's scale (20) spreads a sure run's posterior over thousands of
    # tokens: the LLM read a blend even where the projector heard the word right. An LLM's token embeddings
    # share a common direction (every pair is fairly near), as these do.
    draw = torch.Generator().manual_seed(0)
    common = torch.randn(64, generator=draw)
    vocabulary = torch.nn.functional.normalize(common + 0.5 * torch.randn(5000, 64, generator=draw), dim=-1)  # [V, H]
    heard = (vocabulary[7] + 0.1 * vocabulary[8])[None, None]  # [1, 1, H]: nearest token 7
    filler = torch.zeros(64)
    cosines = torch.nn.functional.normalize(heard[0, 0], dim=0) @ vocabulary.T
    assert cosines.argmax() == 7  # it heard token 7
    soft, sharp = (Projector(8, 64, compress=True, read_scale=scale) for scale in (20.0, 1000.0))
    for projector in (soft, sharp):
        with torch.no_grad():
            projector.blank.copy_(-vocabulary[7])
    read_soft = soft.compress(heard, torch.tensor([1]), vocabulary, filler)[0, 0]
    read_sharp = sharp.compress(heard, torch.tensor([1]), vocabulary, filler)[0, 0]
    assert torch.allclose(read_sharp, vocabulary[7], atol=1e-4)
    assert torch.nn.functional.cosine_similarity(read_soft, vocabulary[7], dim=0) < 0.9  # a blend
    config = SpeechLLMConfig(llm="tiny", encoders=[EncoderSpec("whisper", "semantic")], compress_read_scale=1000.0)
    assert SpeechLLMConfig.from_dict(config.to_dict()).compress_read_scale == 1000.0  # saved with the model
    assert SpeechLLMConfig.from_dict({**config.to_dict(), "compress_read_scale": 20.0}) == SpeechLLMConfig(
        llm="tiny", encoders=[EncoderSpec("whisper", "semantic")])  # older folders read as before


def test_a_model_with_context_layers_saves_and_loads_them(tokenizer, tmp_path):
    model = SpeechLLM(
        SpeechLLMConfig(llm="tiny", encoders=[EncoderSpec("whisper", "semantic"), EncoderSpec("ge2e", "paralinguistic")],
                        dtype="fp32", projector_hidden=64, projector_context_layers=1),
        llm=tiny_llm("llama", len(tokenizer), 0), tokenizer=tokenizer,
        encoders={"semantic": WhisperEncoder(config=TINY_WHISPER, seed=0), "paralinguistic": GE2EEncoder(seed=0)})
    # the layers are the semantic projector's, which hears the words; the paralinguistic one stays the paper's
    assert model.projectors["semantic"].context is not None and model.projectors["paralinguistic"].context is None
    waves = [noise(1.3, seed=1), noise(2.2, seed=2)]

    def logits(m):
        batch = build_batch(m, [question(m), question(m)], encode_audio(m, [[w] for w in waves]), answers=["Hi."] * 2)
        return m(batch, return_logits=True).logits

    folder = save_model(model, tmp_path / "model", include_llm=True)
    assert any(".context." in name for name in load_file(folder / "model.safetensors"))
    loaded = load_model(folder)
    assert loaded.config.projector_context_layers == 1 and torch.equal(logits(model), logits(loaded))


def test_a_compressing_model_saves_its_blank_and_refuses_weights_without_one(tokenizer, tmp_path):
    def compressing(seed):
        model = SpeechLLM(
            SpeechLLMConfig(llm="tiny", encoders=[EncoderSpec("whisper", "semantic")], dtype="fp32",
                            projector_compress=True),
            llm=tiny_llm("llama", len(tokenizer), seed), tokenizer=tokenizer,
            encoders={"semantic": WhisperEncoder(config=TINY_WHISPER, seed=seed)})
        return model

    model = compressing(0)
    with torch.no_grad():
        model.projectors["semantic"].linear2.weight.normal_(std=0.5)
    waves = [noise(1.3, seed=1), noise(2.2, seed=2)]
    conversations = [question(model), question(model)]

    def logits(m, items):
        audio = encode_audio(m, [[waves[i]] for i in items])
        batch = build_batch(m, [conversations[i] for i in items], audio, answers=["Hi."] * len(items))
        return m(batch, return_logits=True).logits

    folder = save_model(model, tmp_path / "model", include_llm=True)
    assert "speech_encoder_projector.blank" in load_file(folder / "model.safetensors")
    loaded = load_model(folder)
    assert loaded.config.projector_compress and torch.equal(logits(model, [0, 1]), logits(loaded, [0, 1]))
    # the answer to each item is the same alone as in the batch (the audio spans keep their lengths)
    single = logits(model, [1])
    together = logits(model, [0, 1])
    assert torch.allclose(single[0], together[1, : single.shape[1]], atol=1e-4)
    plain = tiny_speech_llm(tokenizer)
    save_model(plain, tmp_path / "plain")
    with pytest.raises(ValueError, match="missing speech_encoder_projector.blank"):
        load_projectors(compressing(1), tmp_path / "plain")


def test_bad_audio_is_named_not_a_torch_traceback(tokenizer, tmp_path):
    model = tiny_speech_llm(tokenizer)
    bad = tmp_path / "speech.wav"
    bad.write_text("this is not audio")
    with pytest.raises(AudioError, match="speech.wav: unreadable"):
        generate(model, [str(bad)])
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="silent.wav: silent"):
        generate(model, [str(silent)])
    long = tmp_path / "long.wav"
    sf.write(long, noise(45.0), 16000)
    with pytest.raises(AudioError, match="long.wav: too long"):
        generate(model, [str(long)])
    stereo = tmp_path / "stereo8k.wav"
    sf.write(stereo, np.stack([noise(2.0, rate=8000), noise(2.0, seed=4, rate=8000)], axis=1), 8000)
    assert generate(model, [str(stereo)], params=GenerationParams(max_new_tokens=3))[0].token_ids  # resampled and mixed, answered


def test_a_bad_encoder_configuration_is_refused(tokenizer):
    from azeros.models import EncoderSpec, build_encoder

    with pytest.raises(ValueError, match="unknown encoder kind 'wav2vec'"):
        build_encoder("wav2vec")
    with pytest.raises(ValueError, match="needs a semantic encoder"):
        SpeechLLM(SpeechLLMConfig(llm="x", encoders=[EncoderSpec("ge2e", "paralinguistic")]),
                  llm=object(), tokenizer=tokenizer)


def _unequal_training_batch(model, conversations=None):
    """Four rows of unequal audio and answer lengths (a batch that packs several rows together); SIFT_sp
    conversations unless given."""
    if conversations is None:
        messages = target_messages(MODES["sift_sp"], "hello there", {"gender": "female"}, encoders=model.roles)
        conversations = [messages] * 4
    waves = [[noise(s, seed=i)] for i, s in enumerate([1.0, 2.5, 0.6, 1.4])]
    answers = ["Hi", "Hi! How can I help you today, my friend? Tell me all about it.", "Yes.", "Sure, here it is."]
    return build_batch(model, conversations, encode_audio(model, waves), answers=answers, finished=[True, False, True, True])


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_pass_after_the_shared_prefix_equals_the_padded_pass(tokenizer, family, attention):
    model = tiny_speech_llm(tokenizer, family, paralinguistic=True).train()
    model.llm.config._attn_implementation = attention
    sp = target_messages(MODES["sift_sp"], "hello there", {"gender": "female"}, encoders=model.roles)
    ssp = target_messages(MODES["sift_ssp"], "hello there", {"gender": "male"}, encoders=model.roles)

    def loss_and_grads(conversations, padded, reuse=True):
        model.zero_grad()
        batch = _unequal_training_batch(model, conversations)  # the short rows share packed rows
        out = model(batch, reuse_prefix=reuse, return_logits=padded)  # return_logits: the whole padded batch, nothing skipped
        out.loss.backward()
        return batch.shared_prefix, out, [p.grad.clone() for p in model.projectors.parameters()]

    for conversations in ([sp] * 4, [sp, ssp, sp, ssp]):
        _, padded, padded_grads = loss_and_grads(conversations, padded=True)
        for reuse in (True, False):
            prefix, packed, packed_grads = loss_and_grads(conversations, padded=False, reuse=reuse)
            torch.testing.assert_close(packed.loss, padded.loss, rtol=1e-5, atol=1e-6)
            assert (packed.correct, packed.tokens) == (padded.correct, padded.tokens)
            for a, b in zip(packed_grads, padded_grads, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        rendered = render(model, conversations[0], [16000], "Hi")
        first_audio = min(span.start for span in rendered.audio_spans)
        assert 0 < len(prefix) <= first_audio and tuple(rendered.input_ids[: len(prefix)]) == prefix
    # different system turns share only the template's opening; the states are kept per prefix
    assert len(prefix) < first_audio and len(model.prefix_states) == 2


def test_inference_hears_both_encoders_with_or_without_text(tokenizer):
    model = tiny_speech_llm(tokenizer, paralinguistic=True)
    saved = {**model.config.to_dict(), "chat_mode": "sift_s", "question_mode": "sit_sp"}  # a config of before
    config = SpeechLLMConfig.from_dict(saved)
    rebuilt = SpeechLLM(config, llm=model.llm, tokenizer=tokenizer, encoders=dict(model.encoders))

    def encoders_heard(text):
        chat = render(rebuilt, question(rebuilt, text), [16000])
        return [span.encoder for span in chat.audio_spans]

    assert encoders_heard(None) == ["paralinguistic", "semantic"]  # the layout it trained in, every mode
    assert encoders_heard("Is the speaker male or female?") == ["paralinguistic", "semantic"]
    assert generate(rebuilt, [(noise(1.0), 16000)] * 2, [None, "Who speaks?"], params=GenerationParams(max_new_tokens=3))  # both render and run


def _assert_the_llms_own_loss(model):
    """The packed pass (with and without prefix reuse) and the padded pass give the LLM's own ``labels=`` loss,
    and the padded pass its own logits."""
    batch = _unequal_training_batch(model)
    with torch.no_grad():
        own = model.llm(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, labels=batch.labels)
        padded = model(batch, return_logits=True)
        torch.testing.assert_close(padded.logits, own.logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(padded.loss, own.loss, rtol=1e-5, atol=1e-6)
        for reuse in (False, True):
            torch.testing.assert_close(model(batch, reuse_prefix=reuse).loss, own.loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_is_the_llms_own_and_batch_generation_equals_one_at_a_time(tokenizer, family):
    # Gemma2/3 soft-cap their logits, Cohere and Granite scale them: the loss must see what generation sees.
    model = tiny_speech_llm(tokenizer, family, paralinguistic=True)
    _assert_the_llms_own_loss(model)
    audios = [(noise(s, seed=i), 16000) for i, s in enumerate(SECONDS[:3])]
    batch = generate(model, audios, TEXTS[:3], params=GenerationParams(max_new_tokens=6))
    alone = [generate(model, [a], [t], params=GenerationParams(max_new_tokens=6))[0] for a, t in zip(audios, TEXTS[:3])]
    assert [a.token_ids for a in batch] == [a.token_ids for a in alone]


@pytest.mark.parametrize(
    ("family", "settings"),
    [
        ("mistral", {}),
        ("qwen2", {"use_sliding_window": True, "max_window_layers": 1}),
        ("phi3", {}),
        ("gemma2", {}),
        ("gemma3_text", {"layer_types": ["sliding_attention", "full_attention"]}),
    ],
)
def test_sliding_window_llms_train_on_rows_longer_than_the_window(tokenizer, family, settings):
    for window, packed in ((8, False), (256, True)):  # rows of 56 to 100 positions
        model = tiny_speech_llm(tokenizer, family, paralinguistic=True, sliding_window=window, **settings)
        _assert_the_llms_own_loss(model)
        assert len(model.prefix_states) == packed  # only a packed pass starts after the shared prefix

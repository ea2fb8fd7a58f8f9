"""A few short checks on the real small weights of the embedded default (SmolLM2-135M, Whisper tiny.en
CTranslate2, GE2E), with real synthesized and recorded speech."""

from __future__ import annotations

import logging
import subprocess

import numpy as np
import pytest
import torch

from azeros.audio import load_audio
from azeros.inference import GenerationParams, generate
from azeros.models import EncoderSpec, SpeechLLM, SpeechLLMConfig, build_encoder

pytestmark = pytest.mark.real_weights

RECORDING = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"


def espeak(text: str, voice: str, pitch: int = 50) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "--stdout", text], check=True, capture_output=True
    ).stdout
    return load_audio(wav, name=f"espeak {voice}")


@pytest.fixture(scope="module")
def default_model():
    config = SpeechLLMConfig(
        llm="smollm2-135m-instruct",
        encoders=[
            EncoderSpec("whisper-ct2", "semantic", {"path": "whisper-tiny.en-ct2"}),
            EncoderSpec("ge2e", "paralinguistic", {"path": "ge2e-resemblyzer"}),
        ],
        dtype="fp32",
    )
    return SpeechLLM(config)


def test_the_default_model_trains_only_its_projectors(default_model, caplog):
    with caplog.at_level(logging.INFO, logger="azeros"):
        SpeechLLM(default_model.config, llm=default_model.llm, tokenizer=default_model.tokenizer)
    printed = caplog.text
    assert "semantic: 1536 -> 576 -> 576" in printed  # Whisper tiny.en 384 x 4 -> SmolLM2's 576
    assert "paralinguistic: 1024 -> 576 -> 576" in printed  # GE2E 256 x 4
    semantic = 1536 * 576 + 576 + 576 * 576 + 576
    paralinguistic = 1024 * 576 + 576 + 576 * 576 + 576
    assert f"{semantic + paralinguistic:,} trainable parameters" in printed
    # aliases are saved, not this machine's paths, so a saved model loads anywhere
    assert [e.options["path"] for e in default_model.config.encoders] == ["whisper-tiny.en-ct2", "ge2e-resemblyzer"]
    trainable = [n for n, p in default_model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("projectors.") for n in trainable)


@pytest.mark.parametrize(("alias", "dim"), [("whisper-tiny.en-ct2", 384), ("whisper-base-ct2", 512)])
def test_whisper_ct2_frames_are_the_same_alone_or_batched(alias, dim):
    encoder = build_encoder("whisper-ct2", path=alias)  # base: joined from its two packages on first use
    waves = [load_audio(RECORDING), espeak("hello there", "en"), espeak("good morning to you", "en+f3")]
    frames, lengths = encoder(waves)
    assert encoder.dim == dim
    assert lengths.tolist() == [encoder.num_frames(w.size) for w in waves]
    for i, wave in enumerate(waves):
        alone, n = encoder([wave])
        assert torch.equal(frames[i, : lengths[i]], alone[0, : n[0]])



def test_whisper_ct2_padded_to_its_window_reads_the_utterance_inside_30_s_of_silence():
    plain = build_encoder("whisper-ct2", path="whisper-tiny.en-ct2")
    padded = build_encoder("whisper-ct2", path="whisper-tiny.en-ct2", pad_to_window=True)
    waves = [espeak("hello there", "en"), espeak("good morning to you", "en+f3")]
    frames, lengths = padded(waves)
    assert lengths.tolist() == [plain.num_frames(w.size) for w in waves]  # the real audio's frames only
    silence = np.zeros(30 * 16000, dtype=np.float32)
    silence[: waves[0].size] = waves[0]
    window, _ = plain([silence])  # [1, 1500, 384]: what Whisper itself reads
    assert torch.allclose(frames[0, : lengths[0]], window[0, : lengths[0]], atol=1e-4)
    unpadded, _ = plain(waves[:1])
    assert not torch.allclose(unpadded[0], frames[0, : lengths[0]], atol=1e-2)  # padding changes the frames
    # caches and models made before the option keep their fingerprint; the padded encoder has its own
    assert "pad_to_window" not in plain.config() and padded.fingerprint() != plain.fingerprint()

def test_ge2e_tells_voices_apart():
    encoder = build_encoder("ge2e", path="ge2e-resemblyzer")
    texts = ["the weather is lovely today", "please call me back tomorrow", "where is the nearest station"]
    voices = {"male": ("en-us", 40), "female": ("en-us+f4", 80)}
    means = {}
    for name, (voice, pitch) in voices.items():
        frames, lengths = encoder([espeak(t, voice, pitch) for t in texts])
        means[name] = [torch.nn.functional.normalize(frames[i, : lengths[i]].mean(0), dim=0) for i in range(3)]
    same = np.mean([float(means[v][0] @ means[v][j]) for v in means for j in (1, 2)])
    cross = np.mean([float(means["male"][i] @ means["female"][j]) for i in range(3) for j in range(3)])
    assert same > cross + 0.05, (same, cross)


def test_the_frozen_llm_answers_a_typed_question(default_model):
    (answer,) = generate(default_model, [None], ["What is the capital of France?"], params=GenerationParams(max_new_tokens=24))
    assert "paris" in answer.text.lower()
    assert answer.finish_reason == "stop"


def test_a_real_recording_goes_through_the_whole_model(default_model):
    answers = generate(default_model, [RECORDING, RECORDING], [None, "Who is speaking?"],
                       params=GenerationParams(max_new_tokens=8))
    assert all(a.token_ids for a in answers)  # untrained projectors: any answer, but no crash

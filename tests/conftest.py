"""Shared fixtures: tiny random models on the real SmolLM2 tokenizer, a tiny saved model folder, and test audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from azeros.llm import load_tokenizer
from azeros.models import (
    EncoderSpec,
    GE2EEncoder,
    SpeechLLM,
    SpeechLLMConfig,
    WhisperEncoder,
    load_model,
    save_model,
)
from azeros.text import AudioContent, Message, PromptTurn, conversation
from tests.sounds import speechlike

TINY_WHISPER = dict(
    d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=80,
    max_source_positions=1500,
)
# Four stacks at 50/25/12.5/25 Hz whose widths make the output take channels from three of them.
TINY_ZIPFORMER = dict(
    downsampling_factor=[1, 2, 4, 2], num_encoder_layers=[1, 2, 1, 1], encoder_dim=[16, 32, 24, 20],
    feedforward_dim=[32, 48, 40, 36], num_heads=[2, 2, 4, 2], query_head_dim=[4], value_head_dim=[3],
    pos_head_dim=[2], pos_dim=8, cnn_module_kernel=[5, 3, 7, 3],
)


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer (ChatML template with a default system prompt)."""
    return load_tokenizer("smollm2-135m-instruct")


# Causal LMs the loss and generation are checked on (transformers' model_type): each with what sets it apart
# (Gemma's embedding scale, Gemma2's logit soft-capping, Cohere's and Granite's logit scaling, Qwen3's norms).
FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "gemma3_text", "phi3", "cohere", "granite")
# Settings whose defaults would hide a family's difference in a tiny random model (logits of a few units).
_FAMILY_SETTINGS = {
    "gemma2": {"final_logit_softcapping": 2.0},
    "gemma3_text": {"final_logit_softcapping": 2.0},
    "granite": {"logits_scaling": 4.0, "embedding_multiplier": 2.0},
}


def tiny_llm(family: str, vocab_size: int, seed: int = 0, **settings):
    """A 2-layer random causal LM of a transformers ``model_type``; a large init std keeps greedy choices far
    from ties. ``settings`` override the config (e.g. ``sliding_window``)."""
    config = AutoConfig.for_model(
        family, vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
        initializer_range=0.2, tie_word_embeddings=False, **{**_FAMILY_SETTINGS.get(family, {}), **settings},
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()


def tiny_speech_llm(
    tokenizer, family: str = "llama", *, paralinguistic: bool = False, seed: int = 0, **settings
) -> SpeechLLM:
    """A SpeechLLM of tiny random parts: Whisper (semantic) and optionally GE2E (paralinguistic); ``settings``
    override the LLM's config."""
    specs = [EncoderSpec("whisper", "semantic")]
    encoders = {"semantic": WhisperEncoder(config=TINY_WHISPER, seed=seed)}
    if paralinguistic:
        specs.append(EncoderSpec("ge2e", "paralinguistic"))
        encoders["paralinguistic"] = GE2EEncoder(seed=seed)
    model = SpeechLLM(
        SpeechLLMConfig(llm="tiny", encoders=specs, dtype="fp32"),
        llm=tiny_llm(family, len(tokenizer), seed, **settings),
        tokenizer=tokenizer,
        encoders=encoders,
    )
    torch.manual_seed(seed + 1)
    for p in model.projectors.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return model


def noise(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """Band-limited noise with a little structure, scaled to a speech-like level."""
    rng = np.random.default_rng(seed)
    wave = rng.standard_normal(int(seconds * rate)).astype(np.float32)
    wave += np.sin(np.arange(wave.size) * (0.02 + 0.01 * (seed % 7))).astype(np.float32)
    return 0.1 * wave / np.abs(wave).max()


@pytest.fixture(scope="session")
def tiny_model_section(tmp_path_factory, tokenizer) -> dict:
    """The ``model`` section of a training recipe for a tiny random Llama (saved to a folder, on the real
    SmolLM2 tokenizer) and the tiny Whisper encoder."""
    folder = tmp_path_factory.mktemp("tiny-llm")
    tiny_llm("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"llm": str(folder), "dtype": "fp32",
            "encoders": [{"kind": "whisper", "role": "semantic", "options": {"config": TINY_WHISPER, "seed": 0}}]}


def question(model: SpeechLLM, text: str | None = None, *, audio: bool = True) -> list[Message]:
    """One question to ``model`` in its chat mode: one audio (unless ``audio`` is off), then ``text``."""
    turn = PromptTurn("user", text, (AudioContent(),) if audio else ())
    return conversation([turn], mode=model.chat_mode, encoders=model.roles)


def oracle_prompt(tokenizer, messages: list[Message]) -> str:
    """The prompt as one string, the oracle text in every slot (what a text-only server is sent)."""
    chat = [{"role": m.role, "content": m.oracle_content()} for m in messages]
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory) -> Path:
    """A random tiny Llama with the real SmolLM2 tokenizer and a tiny Whisper encoder, saved with its LLM."""
    tokenizer = load_tokenizer("smollm2-135m-instruct")  # its own: nothing another test does to one reaches it
    torch.manual_seed(0)
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, initializer_range=0.2, tie_word_embeddings=False,
        )
    ).eval()
    model = SpeechLLM(
        SpeechLLMConfig(llm="tiny", encoders=[EncoderSpec("whisper", "semantic")], dtype="fp32"),
        llm=llm,
        tokenizer=tokenizer,
        encoders={"semantic": WhisperEncoder(config=TINY_WHISPER, seed=0)},
    )
    torch.manual_seed(1)
    for p in model.projectors.parameters():
        torch.nn.init.normal_(p, std=0.5)  # far from ties, so greedy answers are stable
    return save_model(model, tmp_path_factory.mktemp("tiny-azeros"), include_llm=True)


@pytest.fixture(scope="session")
def model(model_folder) -> SpeechLLM:
    return load_model(model_folder)


@pytest.fixture(scope="session")
def wavs(tmp_path_factory) -> list[Path]:
    """Three short recordings at different rates and lengths."""
    folder = tmp_path_factory.mktemp("wavs")
    paths = []
    for seed, (seconds, rate) in enumerate([(1.0, 16000), (1.6, 22050), (0.7, 8000)]):
        path = folder / f"utt{seed}.wav"
        sf.write(path, speechlike(seconds, seed, rate), rate)
        paths.append(path)
    return paths

"""A tiny saved model folder and test recordings, shared by the inference and serving tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from azeros.models import EncoderSpec, SpeechLLM, SpeechLLMConfig, WhisperEncoder, load_tokenizer

TINY_WHISPER = dict(
    d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=80,
    max_source_positions=1500,
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def speechlike(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """Noise with a tone in it at a speech-like level: distinct per seed, never silent."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate))
    wave = 0.3 * rng.standard_normal(t.size) + np.sin(t * (0.02 + 0.01 * (seed % 7)))
    return (0.1 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory) -> Path:
    """A random tiny Llama with the real SmolLM2 tokenizer and a tiny Whisper encoder, saved with its LLM."""
    tokenizer = load_tokenizer("smollm2-135m-instruct")
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
        verbose=False,
    )
    torch.manual_seed(1)
    for p in model.projectors.parameters():
        torch.nn.init.normal_(p, std=0.5)  # far from ties, so greedy answers are stable
    return model.save_pretrained(tmp_path_factory.mktemp("tiny-azeros"), include_llm=True)


@pytest.fixture(scope="session")
def model(model_folder) -> SpeechLLM:
    return SpeechLLM.from_pretrained(model_folder, verbose=False)


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

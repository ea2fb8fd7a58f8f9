"""A tiny saved model folder and test recordings, shared by the inference and serving tests."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch
import uvicorn
from transformers import LlamaConfig, LlamaForCausalLM

from azeros.models import EncoderSpec, SpeechLLM, SpeechLLMConfig, WhisperEncoder, load_tokenizer
from azeros.serve import ServerConfig, ServingLimits, load_server
from tests.serving.sounds import speechlike

TINY_WHISPER = dict(
    d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=80,
    max_source_positions=1500,
)


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


class RunningServer:
    """An ``azeros serve`` app in a uvicorn thread on a free loopback port."""

    def __init__(self, app, api_key: str | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


API_KEY = "test-key"


@pytest.fixture(scope="session")
def server(model_folder):
    """The tiny model served with an API key, spoken replies on, a 3 s audio limit and a 1 MiB body limit."""
    config = ServerConfig(
        api_key=API_KEY, model_name="tiny", speak=True, max_request_bytes=1024 * 1024, max_pending=64,
        limits=ServingLimits(max_audio_seconds=3.0, default_max_tokens=12),
    )
    running = RunningServer(load_server(SpeechLLM.from_pretrained(model_folder, verbose=False), config), API_KEY)
    yield running
    running.stop()

"""A running server of the tiny saved model (``model_folder`` in tests/conftest.py) on a loopback port."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from azeros.inference import load_model
from azeros.serve import ServerConfig, ServingLimits, load_server


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
    running = RunningServer(load_server(load_model(model_folder), config), API_KEY)
    yield running
    running.stop()

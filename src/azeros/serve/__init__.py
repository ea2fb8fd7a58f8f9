"""Serving layer: the OpenAI-compatible protocol, the chat service, the FastAPI app and its web page."""

from azeros.serve.app import ServerConfig, build_app, load_server, run_server
from azeros.serve.serving import RequestError, ServingChat, ServingLimits
from azeros.serve.speech import Speaker, SpeechError

__all__ = [
    "RequestError",
    "ServerConfig",
    "ServingChat",
    "ServingLimits",
    "Speaker",
    "SpeechError",
    "build_app",
    "load_server",
    "run_server",
]

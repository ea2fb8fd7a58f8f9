"""The FastAPI application: routes, API key, request size limit, OpenAI-shaped errors, the web page.

Routes: ``POST /v1/chat/completions`` (JSON or SSE), ``GET /v1/models``, ``GET /health`` and the web
page at ``/``. Every refusal is a 4xx in OpenAI's error shape with a message saying what was wrong, and a
failure while answering is a 500 in the same shape. A request whose client hangs up is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from azeros.errors import AzerosError
from azeros.inference import Engine, SpeechLLM, load_model
from azeros.serve.protocol import ChatCompletionRequest, ModelCard, ModelList
from azeros.serve.serving import RequestError, ServingChat, ServingLimits
from azeros.serve.speech import Speaker

__all__ = ["ServerConfig", "build_app", "load_server", "run_server"]

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


@dataclass
class ServerConfig:
    """How ``azeros serve`` runs.

    Attributes:
        host: address to bind; loopback by default, so nothing outside this machine reaches it unasked.
        port: TCP port.
        api_key: when set, ``/v1/*`` needs ``Authorization: Bearer <api_key>``.
        model_name: the name clients give in ``model`` (default: the model folder's name).
        max_request_bytes: largest request body accepted (413 above it).
        max_pending: requests waiting or running before new ones get 429.
        max_batch_size: most requests answered in one ``generate``.
        batch_window_ms: how long the engine collects a batch.
        speak: offer spoken replies (espeak-ng) to requests that ask for audio.
        voice: the espeak-ng voice.
        limits: per-request limits (audio length, answer length).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str | None = None
    max_request_bytes: int = 20 * 1024 * 1024
    max_pending: int = 64
    max_batch_size: int = 8
    batch_window_ms: float = 5.0
    speak: bool = False
    voice: str = "en"
    limits: ServingLimits = field(default_factory=ServingLimits)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return _error_response(RequestError(status, message, kind=kind))


def _error_response(error: RequestError) -> JSONResponse:
    return JSONResponse(error.body().model_dump(), status_code=error.status)


async def _disconnected(request: Request) -> None:
    """Returns once the client has hung up (the body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _validation_error(error: RequestValidationError) -> RequestError:
    """A 400 saying ``messages.0.content.0.input_audio.data: Field required; ...`` (the body prefix dropped),
    its ``param`` the first field named. Only pydantic's messages are shown, never the values given."""
    parts, locations = [], []
    for item in error.errors():
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        locations.append(location)
        parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
    return RequestError(400, "; ".join(parts) or "invalid request", param=next(filter(None, locations), None))


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` with 413, whether or not they declare their length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Read the body here (the endpoint reads all of it anyway) so an undeclared length is bounded too.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect as usual
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(413, f"request body over the limit of {self.max_bytes} bytes", "request_too_large")
        await response(scope, receive, send)


def build_app(serving: ServingChat, config: ServerConfig) -> FastAPI:
    """The application around a ready :class:`ServingChat` (the engine is closed at shutdown)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        serving.close()

    app = FastAPI(title="azeros", lifespan=lifespan)
    app.state.serving = serving
    app.add_middleware(BodySizeLimit, max_bytes=config.max_request_bytes)

    @app.exception_handler(RequestError)
    async def refused(_: Request, error: RequestError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(Exception)
    async def crashed(_: Request, error: Exception) -> JSONResponse:
        return _error_response(RequestError.failed(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return _error_response(_validation_error(error))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), "invalid_request_error")

    async def authorized(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {config.api_key}".encode()):
            raise RequestError(401, "missing or wrong API key (Authorization: Bearer <key>)", kind="authentication_error")

    @app.get("/health")
    async def health() -> JSONResponse:
        alive = serving.engine.alive
        body = {"status": "ok" if alive else "engine stopped", "model": serving.model_name,
                "pending": serving.engine.pending, "speak": serving.speaker is not None}
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=serving.model_name)])

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    async def chat_completions(request: ChatCompletionRequest, http: Request):
        if request.stream:  # the streaming response stops its events when the client hangs up
            return StreamingResponse(await serving.stream(request), media_type="text/event-stream")
        answering = asyncio.ensure_future(serving.complete(request))
        hung_up = asyncio.ensure_future(_disconnected(http))
        await asyncio.wait({answering, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        hung_up.cancel()
        if not answering.done():  # nobody is waiting for the answer: drop the request
            answering.cancel()
            logger.info("client hung up; its request was dropped")
            return Response(status_code=499)
        response = answering.result()
        return JSONResponse(json.loads(response.model_dump_json(exclude_none=True)))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def load_server(model: SpeechLLM, config: ServerConfig) -> FastAPI:
    """Start an engine on ``model`` and build the application for it."""
    engine = Engine(
        model, max_batch_size=config.max_batch_size, batch_window_ms=config.batch_window_ms,
        max_pending=config.max_pending,
    )
    speaker = Speaker(config.voice) if config.speak else None
    serving = ServingChat(engine, config.model_name or "azeros", config.limits, speaker)
    return build_app(serving, config)


def _check_address_free(host: str, port: int) -> None:
    """Bind the address once and let it go: uvicorn would find a port in use only after the model loaded."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):  # SO_REUSEADDR, as uvicorn binds
            pass
    except (OSError, OverflowError) as error:  # OverflowError: a port past 65535
        raise AzerosError(f"cannot listen on {host}:{port}: {getattr(error, 'strerror', None) or error}") from None


def run_server(model_folder: str | Path, config: ServerConfig, device: str = "cpu") -> None:
    """``azeros serve``: load the model folder onto ``device`` and serve it until interrupted.

    Raises:
        AzerosError: the address cannot be listened on (a port in use), said before the model loads.
    """
    import uvicorn

    _check_address_free(config.host, config.port)
    folder = Path(model_folder)
    config.model_name = config.model_name or folder.resolve().name
    app = load_server(load_model(folder, device=device), config)
    if config.host not in ("127.0.0.1", "localhost", "::1") and config.api_key is None:
        logger.warning("serving on %s without an API key: anyone who reaches this address can use it", config.host)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info")

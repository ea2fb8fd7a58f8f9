"""Chat completions: a validated request becomes an engine request; the answer becomes OpenAI JSON or SSE.

Nothing here knows about HTTP routing; :mod:`azeros.serve.app` maps :class:`RequestError` to responses.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from azeros.audio import AudioError, AudioLimits, load_audio
from azeros.inference import Answer, Engine, EngineFull, EngineRequest, Turn, prompt_length
from azeros.serve.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    DeltaMessage,
    ErrorBody,
    ErrorResponse,
    ReplyAudio,
    ResponseMessage,
    Usage,
    completion_id,
)
from azeros.serve.speech import Speaker, SpeechError
from azeros.text import MODE_SYSTEM, SystemMessage

__all__ = ["RequestError", "ServingChat", "ServingLimits", "StopText"]

T = TypeVar("T")


class RequestError(Exception):
    """A request the server refuses (4xx) or failed on (5xx); ``status`` is the HTTP status, ``message`` says why."""

    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.kind = kind

    def body(self) -> ErrorResponse:
        """The error in OpenAI's shape."""
        body = ErrorBody(message=self.message, type=self.kind, param=self.param, code=str(self.status))
        return ErrorResponse(error=body)

    @classmethod
    def failed(cls, error: BaseException) -> RequestError:
        """A 500 for an unexpected error while answering (the client sees its type, the log the rest)."""
        return cls(500, f"the server failed to answer this request ({type(error).__name__}); see the server log",
                   kind="server_error")


class StopText:
    """Cuts an answer before the first of ``stops`` as its pieces arrive, and ends its generation there.

    A tail that could be the start of a stop text is held back until the next piece settles it.

    Args:
        stops: the texts that end the answer (none: the answer passes through whole).
        request: the engine request whose generation a stop text ends.
    """

    def __init__(self, stops: list[str], request: EngineRequest) -> None:
        self.stops = stops
        self.request = request
        self.text = ""  # everything generated so far
        self.released = 0  # text[:released] comes before any stop text
        self.cut: int | None = None  # where the first stop text begins, once seen

    def feed(self, piece: str) -> str:
        """Take the next piece of the answer; return the text it shows to come before any stop text."""
        if self.cut is not None:
            return ""
        start = self.released
        self.text += piece
        # A stop text cannot begin before ``start``: the held-back tail is the longest that could begin one.
        found = [i for stop in self.stops if (i := self.text.find(stop, start)) >= 0]
        if found:
            self.cut = min(found)
            self.request.abandoned.set()  # whatever follows would be thrown away
            self.released = self.cut
        else:
            held = max((k for stop in self.stops for k in range(1, len(stop)) if self.text.endswith(stop[:k])), default=0)
            self.released = len(self.text) - held
        return self.text[start:self.released]

    def rest(self) -> str:
        """The tail held back when the answer ended without a stop text."""
        return "" if self.cut is not None else self.text[self.released:]

    def finish(self, answer: Answer) -> tuple[str, str]:
        """The answer's text and finish reason (``stop`` when a stop text cut it)."""
        if self.cut is None:
            return answer.text, answer.finish_reason
        return self.text[:self.cut], "stop"


@dataclass(frozen=True)
class ServingLimits:
    """What one request may ask for.

    Attributes:
        max_audio_seconds: longest accepted audio part.
        default_max_tokens: answer length when the request gives none.
        max_tokens_limit: longest answer any request gets.
        max_prompt_tokens: longest accepted prompt in LLM positions (text tokens and audio frames);
            ``None``: what the LLM's context holds. Answers are cut to fit the context either way.
        decode_workers: threads that decode uploaded audio and measure prompts; at most this many
            uploads are decoded at once, so decoding memory is bounded by this times one audio's limit.
    """

    max_audio_seconds: float = 30.0
    default_max_tokens: int = 256
    max_tokens_limit: int = 1024
    max_prompt_tokens: int | None = None
    decode_workers: int = 2


class ServingChat:
    """Answers chat-completion requests through an :class:`Engine`.

    Args:
        engine: the batching engine.
        model_name: the name clients must give in ``model``.
        limits: request limits.
        speaker: reads answers aloud when a request asks for audio; ``None``: audio replies are refused.
    """

    def __init__(self, engine: Engine, model_name: str, limits: ServingLimits, speaker: Speaker | None = None) -> None:
        self.engine = engine
        self.model_name = model_name
        self.limits = limits
        self.speaker = speaker
        self.audio_limits = AudioLimits(max_seconds=limits.max_audio_seconds)
        self.context: int | None = getattr(engine.model.llm.config, "max_position_embeddings", None)
        bounds = [(limits.max_prompt_tokens, "the server's limit")]
        if self.context is not None:
            bounds.append((self.context - 1, f"the model's context of {self.context} tokens, less one for the answer"))
        self.prompt_limit = min(((n, why) for n, why in bounds if n is not None), default=None)
        self._workers = ThreadPoolExecutor(limits.decode_workers, thread_name_prefix="azeros-decode")

    def close(self) -> None:
        """Stop the decoding threads and the engine (queued requests are finished first)."""
        self._workers.shutdown(cancel_futures=True)
        self.engine.close()

    async def _in_workers(self, function: Callable[..., T], *args, **kwargs) -> T:
        """Run ``function`` in the bounded pool of decoding threads."""
        return await asyncio.get_running_loop().run_in_executor(self._workers, partial(function, *args, **kwargs))

    async def _turns(self, request: ChatCompletionRequest) -> tuple[list[Turn], SystemMessage]:
        """The conversation with its audio decoded, and the system message: the request's, verbatim, or the
        chat mode's when it has none."""
        system_texts = [m.text for m in request.messages if m.role in ("system", "developer")]
        turns = []
        for i, message in enumerate(request.messages):
            if message.role in ("system", "developer"):
                continue
            audios = []
            for j, audio in enumerate(message.audio):
                if message.role == "assistant":
                    raise RequestError(400, "assistant messages cannot hold audio", param=f"messages[{i}]")
                name = f"messages[{i}] audio {j} ({audio.format})"
                try:
                    wave = await self._in_workers(load_audio, audio.content, name=name, limits=self.audio_limits)
                    audios.append(wave)
                except AudioError as error:
                    raise RequestError(400, str(error), param=f"messages[{i}].content") from error
            if message.role == "user" and not audios and not message.text:
                raise RequestError(400, "a user message needs audio or text", param=f"messages[{i}].content")
            turns.append(Turn(message.role, message.text or None, audios))
        return turns, "\n".join(system_texts) if system_texts else MODE_SYSTEM

    async def _check(self, request: ChatCompletionRequest) -> tuple[EngineRequest, int]:
        """The engine request, and the prompt's length in LLM positions."""
        unsupported = request.unsupported_parameters()
        if unsupported:
            raise RequestError(
                400, f"unsupported parameter{'s' if len(unsupported) > 1 else ''}: {', '.join(unsupported)} "
                "(this server gives one text answer per request, without logprobs, tools or penalties)",
                param=unsupported[0],
            )
        if request.model != self.model_name:
            raise RequestError(
                400, f"unknown model {request.model!r}; this server serves {self.model_name!r}", param="model",
                kind="model_not_found",
            )
        if request.wants_audio and self.speaker is None:
            raise RequestError(400, "spoken replies are off; start the server with --speak", param="modalities")
        turns, system = await self._turns(request)
        params = request.to_params(self.limits.default_max_tokens, self.limits.max_tokens_limit)
        prompt = await self._in_workers(prompt_length, self.engine.model, turns, system)
        if self.prompt_limit is not None and prompt > self.prompt_limit[0]:
            limit, why = self.prompt_limit
            raise RequestError(
                400, f"the prompt is {prompt} tokens, over the limit of {limit} ({why}); shorten the messages",
                param="messages",
            )
        if self.context is not None:  # the answer is cut where the context ends (finish_reason "length")
            params = replace(params, max_new_tokens=min(params.max_new_tokens, self.context - prompt))
        return EngineRequest(turns, system, params), prompt

    def _submit(self, engine_request: EngineRequest) -> asyncio.Future[Answer]:
        """Queue a request; cancelling the returned future drops it, or stops its generation if running."""
        try:
            answer_future = asyncio.wrap_future(self.engine.submit(engine_request))
        except EngineFull as error:
            raise RequestError(429, f"server busy: {error}", kind="rate_limit_exceeded") from error

        def abandon(future: asyncio.Future[Answer]) -> None:
            if future.cancelled():
                engine_request.abandoned.set()

        answer_future.add_done_callback(abandon)
        return answer_future

    async def _reply_audio(self, request: ChatCompletionRequest, text: str) -> ReplyAudio | None:
        if not request.wants_audio or self.speaker is None or not text.strip():
            return None
        try:
            wav = await run_in_threadpool(self.speaker.synthesize, text)
        except SpeechError as error:
            raise RequestError(500, str(error), kind="server_error") from error
        return ReplyAudio(
            id=f"audio-{uuid.uuid4().hex}", data=base64.b64encode(wav).decode(), transcript=text,
            expires_at=int(time.time()) + 3600,
        )

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletionResponse:
        """Answer a non-streaming request.

        Raises:
            RequestError: bad input (400), unknown model (400), a full queue (429), a failure while
                answering it (500; other requests batched with it are answered as usual).
        """
        engine_request, prompt_tokens = await self._check(request)
        stop_text = StopText(request.stop, engine_request)
        if request.stop:  # watch the answer grow, to end it at the first stop text
            engine_request.on_text = stop_text.feed
        answer_future = self._submit(engine_request)
        try:
            answer = await answer_future
        except Exception as error:
            raise RequestError.failed(error) from error
        text, finish_reason = stop_text.finish(answer)
        message = ResponseMessage(content=text, audio=await self._reply_audio(request, text))
        return ChatCompletionResponse(
            id=completion_id(), model=self.model_name, choices=[Choice(message=message, finish_reason=finish_reason)],
            usage=Usage.of(prompt_tokens, len(answer.token_ids)),
        )

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[str]:
        """Validate and queue a streaming request, then return its server-sent events.

        Validation happens before the first event, so a bad request is still a plain 4xx response.
        Closing the events (the client went away) drops the request, or stops it if it is running.
        """
        engine_request, prompt_tokens = await self._check(request)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str] = asyncio.Queue()
        stop_text = StopText(request.stop, engine_request)

        def on_text(piece: str) -> None:  # on the engine's thread
            if text := stop_text.feed(piece):
                loop.call_soon_threadsafe(pieces.put_nowait, text)

        engine_request.on_text = on_text
        answer_future = self._submit(engine_request)
        return self._events(request, prompt_tokens, stop_text, pieces, answer_future)

    async def _events(
        self, request: ChatCompletionRequest, prompt_tokens: int, stop_text: StopText, pieces: asyncio.Queue[str],
        answer_future: asyncio.Future[Answer],
    ) -> AsyncIterator[str]:
        chunk_id = completion_id()

        def event(delta: DeltaMessage | None, finish_reason: str | None = None, usage: Usage | None = None) -> str:
            choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish_reason)]
            chunk = ChatCompletionChunk(id=chunk_id, model=self.model_name, choices=choices, usage=usage)
            return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

        try:
            yield event(DeltaMessage(role="assistant", content=""))
            while not (answer_future.done() and pieces.empty()):
                getter = asyncio.ensure_future(pieces.get())
                await asyncio.wait({getter, answer_future}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield event(DeltaMessage(content=getter.result()))
                else:
                    getter.cancel()
            try:
                answer = answer_future.result()
                text, finish_reason = stop_text.finish(answer)
                audio = await self._reply_audio(request, text)
            except Exception as error:  # the stream has started: report in-band, as OpenAI does
                failure = error if isinstance(error, RequestError) else RequestError.failed(error)
                yield f"data: {failure.body().model_dump_json()}\n\n"
            else:
                yield event(DeltaMessage(content=stop_text.rest() or None, audio=audio), finish_reason)
                if request.wants_usage:
                    yield event(None, usage=Usage.of(prompt_tokens, len(answer.token_ids)))
            yield "data: [DONE]\n\n"
        finally:  # also when the client hung up and the response closed the events early
            answer_future.cancel()

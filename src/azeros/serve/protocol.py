"""The OpenAI chat-completions wire format, as pydantic models that validate themselves.

Requests carry audio as ``input_audio`` content parts (base64 wav/mp3/flac) beside ``text`` parts, like
OpenAI's audio models and vLLM's OpenAI server. A request checks what can be checked without the model
(shapes, ranges, base64) and turns itself into generation parameters; the audio itself is decoded by
the serving layer, which knows the limits. What the server cannot honour (``n`` > 1, logprobs, tools,
images, penalties, parameters it does not know) is refused naming the parameter, never ignored; ``stop``
and ``stream_options.include_usage`` mean what they mean at OpenAI. The response models follow the
``openai`` package's (which is a test dependency only: the tests parse every response with its client).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from azeros.inference import GenerationParams

__all__ = [
    "AudioPart",
    "AudioRequest",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatMessage",
    "Choice",
    "ChunkChoice",
    "DeltaMessage",
    "ErrorBody",
    "ErrorResponse",
    "InputAudio",
    "ModelCard",
    "ModelList",
    "ReplyAudio",
    "ResponseMessage",
    "StreamOptions",
    "TextPart",
    "Usage",
    "completion_id",
]


class _Lenient(BaseModel):
    # Unknown fields are ignored, as OpenAI-compatible servers do (clients send extras like "name").
    model_config = ConfigDict(extra="ignore")


class InputAudio(_Lenient):
    """Base64-encoded audio. ``data`` may also be a ``data:audio/...;base64,`` URL."""

    data: str = Field(min_length=1, description="base64 of the encoded file")
    format: Literal["wav", "mp3", "flac"] = "wav"
    _bytes: bytes = PrivateAttr(default=b"")

    @model_validator(mode="after")
    def _decode(self) -> InputAudio:
        payload = self.data.split(",", 1)[1] if self.data.startswith("data:") else self.data
        try:
            self._bytes = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"audio data is not valid base64 ({error})") from error
        if not self._bytes:
            raise ValueError("audio data is empty")
        return self

    @property
    def content(self) -> bytes:
        """The decoded file."""
        return self._bytes


class AudioPart(_Lenient):
    type: Literal["input_audio"]
    input_audio: InputAudio


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


ContentPart = Annotated[TextPart | AudioPart, Field(discriminator="type")]
CONTENT_TYPES = ("text", "input_audio")


class ChatMessage(_Lenient):
    """One message; ``content`` is a string or a list of text and audio parts."""

    role: Literal["system", "developer", "user", "assistant"]
    content: list[ContentPart] = Field(default_factory=list)

    @field_validator("content", mode="before")
    @classmethod
    def _string_is_one_text_part(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [{"type": "text", "text": value}]
        for part in value if isinstance(value, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind is not None and kind not in CONTENT_TYPES:  # e.g. image_url: said plainly, not as a tag mismatch
                raise ValueError(f"{kind} content is not supported; parts may be text or input_audio")
        return value

    @property
    def text(self) -> str:
        """The message's text parts joined by spaces."""
        return " ".join(p.text.strip() for p in self.content if isinstance(p, TextPart) and p.text.strip())

    @property
    def audio(self) -> list[InputAudio]:
        return [p.input_audio for p in self.content if isinstance(p, AudioPart)]


class AudioRequest(_Lenient):
    """Asks for a spoken reply (with ``modalities: ["text", "audio"]``)."""

    voice: str = "default"
    format: Literal["wav"] = "wav"


class StreamOptions(_Lenient):
    include_usage: bool = False


# OpenAI parameters this server cannot honour, each with the values that ask for nothing (some clients
# send them as defaults). Any other value is refused, not ignored: the client would get a different answer
# from the one it asked for.
UNSUPPORTED_PARAMETERS: dict[str, tuple[Any, ...]] = {
    "n": (1,), "logprobs": (False,), "top_logprobs": (0,), "tools": ([],), "tool_choice": ("none",),
    "functions": ([],), "function_call": ("none",), "response_format": ({"type": "text"},), "logit_bias": ({},),
    "presence_penalty": (0,), "frequency_penalty": (0,),
}
# OpenAI parameters that do not change the answer (bookkeeping for the client or OpenAI's platform).
IGNORED_PARAMETERS = frozenset(
    {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "safety_identifier", "prompt_cache_key"}
)


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``. Greedy unless ``temperature`` > 0.

    Top-level fields it does not know are kept in ``model_extra``, so that :meth:`unsupported_parameters`
    can name them.
    """

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0)  # None: the LLM's own generation config
    seed: int | None = None
    stop: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list, max_length=4)
    stream_options: StreamOptions | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: AudioRequest | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_text_is_a_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ends_with_user(self) -> ChatCompletionRequest:
        if self.messages[-1].role != "user":
            raise ValueError("the last message must be a user message")
        return self

    @property
    def wants_audio(self) -> bool:
        return "audio" in (self.modalities or [])

    @property
    def wants_usage(self) -> bool:
        """A streamed answer ends with a chunk that carries the token counts."""
        return self.stream_options is not None and self.stream_options.include_usage

    def unsupported_parameters(self) -> list[str]:
        """The parameters given that this server would have to ignore (unknown ones included)."""
        return [
            name for name, value in (self.model_extra or {}).items()
            if value is not None and name not in IGNORED_PARAMETERS and value not in UNSUPPORTED_PARAMETERS.get(name, ())
        ]

    def to_params(self, default_max_tokens: int, max_tokens_limit: int) -> GenerationParams:
        """Generation parameters; the answer length is capped at the server's limit."""
        asked = self.max_completion_tokens or self.max_tokens or default_max_tokens
        sample = bool(self.temperature)
        return GenerationParams(
            max_new_tokens=min(asked, max_tokens_limit),
            do_sample=sample,
            temperature=self.temperature if sample else 1.0,
            top_p=self.top_p if sample and self.top_p is not None else 1.0,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
        )


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ReplyAudio(BaseModel):
    """A spoken reply: base64 wav and what it says."""

    id: str
    data: str
    transcript: str
    expires_at: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    audio: ReplyAudio | None = None


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    """Token counts: the prompt's LLM positions (text tokens and audio frames) and the generated tokens."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens)


class _Completion(BaseModel):
    """What every completion object carries: its id, creation time and model."""

    id: str
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str


class ChatCompletionResponse(_Completion):
    object: Literal["chat.completion"] = "chat.completion"
    choices: list[Choice]
    usage: Usage


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    audio: ReplyAudio | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(_Completion):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChunkChoice]
    usage: Usage | None = None  # only on the last chunk, and only with stream_options.include_usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "azeros"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape: ``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}``."""

    error: ErrorBody

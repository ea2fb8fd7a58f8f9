"""Multi-turn chat that keeps the LLM's KV cache between turns, and token streaming.

A conversation's context is always what the prompt policy renders (:class:`azeros.text.PromptRenderer`):
each turn the whole conversation is rendered again, the i-th audio of the conversation in slots with
``audio_index=i``. What is *not* done again is the LLM's work on the part it has already seen: the
session remembers what each cached KV position holds (a token id, or one position of one audio), keeps
the longest cached prefix that agrees with the new rendering and feeds only the rest. If the rendering
of an earlier answer differs from the tokens that were generated (re-tokenization), the cache is cut
where they part, so the context is still exactly the policy's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase
from transformers.generation.streamers import BaseStreamer

from azeros.audio import AudioSource, load_audio
from azeros.kv_cache import GrowingCache
from azeros.models.speech_llm import _DEFAULT, Answer, SpeechLLM, TokenBatch
from azeros.text import Message

__all__ = [
    "MODE_SYSTEM",
    "ChatSession",
    "GenerationParams",
    "TokenStreamer",
    "Turn",
    "build_conversation",
    "generate_answers",
]

MODE_SYSTEM = _DEFAULT  # ``system=MODE_SYSTEM``: the chat mode's system message, as in SpeechLLM.conversation

TextCallback = Callable[[int, str], None]  # (row of the batch, new text)


@dataclass(frozen=True)
class GenerationParams:
    """How to generate an answer; requests with equal params can share one batch.

    Attributes:
        max_new_tokens: answer length limit.
        do_sample: sample instead of greedy.
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        repetition_penalty: see :meth:`azeros.models.SpeechLLM.decode`; ``None``: the LLM's own.
        seed: seeds sampling.
    """

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float | None = None
    seed: int | None = None


@dataclass
class Turn:
    """One message of a conversation before rendering.

    Attributes:
        role: ``user`` or ``assistant``.
        text: the typed text (a user's instruction or question, an assistant's answer).
        audios: a user turn's 16 kHz waveforms, in the order they were given.
    """

    role: Literal["user", "assistant"]
    text: str | None = None
    audios: list[np.ndarray] = field(default_factory=list)


class TokenStreamer(BaseStreamer):
    """Turns the token ids ``generate`` produces for a batch into text pieces, row by row.

    A piece is emitted once it decodes cleanly (a character split across tokens waits for its end);
    the end-of-turn token and anything after it are not emitted.

    Args:
        tokenizer: the LLM's tokenizer.
        stop_ids: ids that end an answer.
        on_text: called with ``(row, piece)`` for every new piece of text.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop_ids: Sequence[int], on_text: TextCallback) -> None:
        self.tokenizer = tokenizer
        self.stop_ids = set(stop_ids)
        self.on_text = on_text
        self._prompt_seen = False
        self._ids: list[list[int]] = []
        self._emitted: list[int] = []
        self._done: list[bool] = []

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate first hands over the prompt ids (empty with inputs_embeds)
            self._prompt_seen = True
            return
        tokens = value.reshape(-1).tolist()  # [b]: one new token per row
        if not self._ids:
            self._ids = [[] for _ in tokens]
            self._emitted = [0] * len(tokens)
            self._done = [False] * len(tokens)
        for row, token in enumerate(tokens):
            if self._done[row]:
                continue
            if token in self.stop_ids:
                self._done[row] = True
                continue
            self._ids[row].append(token)
            text = self.tokenizer.decode(self._ids[row], skip_special_tokens=True)
            if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the next token
                continue
            if len(text) > self._emitted[row]:
                self.on_text(row, text[self._emitted[row] :])
                self._emitted[row] = len(text)

    def end(self) -> None:
        """Nothing is held back at the end: a dangling partial character is not text."""


def generate_answers(
    model: SpeechLLM,
    batch: TokenBatch,
    params: GenerationParams = GenerationParams(),
    *,
    cache: GrowingCache | None = None,
    on_text: TextCallback | None = None,
    stop: Callable[[], Sequence[bool]] | None = None,
) -> list[Answer]:
    """Generate answers for a left-padded batch, optionally continuing a KV cache and streaming text.

    :meth:`SpeechLLM.decode` with what a chat adds: a cache holding a prefix of ``batch`` and a text callback.

    Args:
        model: the model.
        batch: the whole conversation(s), embedded; a cached prefix is skipped, not recomputed.
        params: generation parameters.
        cache: KV cache of a prefix of the (single-row) batch; extended in place.
        on_text: called with ``(row, piece)`` as text is generated.
        stop: asked after every new token which rows to stop (see :meth:`SpeechLLM.decode`).

    Returns:
        One answer per row.
    """
    streamer = TokenStreamer(model.tokenizer, model.renderer.stop_ids, on_text) if on_text else None
    return model.decode(batch, **asdict(params), cache=cache, streamer=streamer, stop=stop)


def build_conversation(
    model: SpeechLLM, turns: Sequence[Turn], system: str | None = MODE_SYSTEM
) -> tuple[list[Message], list[np.ndarray]]:
    """Messages and waveforms of a conversation, numbering its audios in order of appearance.

    Args:
        model: the model whose slots and chat mode are used.
        turns: user and assistant turns, oldest first.
        system: the system message; by default the chat mode's.

    Returns:
        ``(messages, waves)``, ``waves[i]`` being the audio of slots with ``audio_index=i``.
    """
    messages = model.conversation(None, audio=False, system=system)[:-1]  # the policy's system head only
    waves: list[np.ndarray] = []
    for turn in turns:
        if turn.role == "assistant":
            messages.append(Message("assistant", (turn.text or "",)))
            continue
        indices = range(len(waves), len(waves) + len(turn.audios))
        waves.extend(turn.audios)
        messages.append(model.user_turn(turn.text, audio_indices=indices))
    return messages, waves


PositionKey = int | tuple[int, str, int]  # a token id, or (audio index, encoder, offset) of an audio position


class ChatSession:
    """A conversation with one model that reuses the KV cache of everything already seen.

    Args:
        model: the model.
        system: the system message; by default the chat mode's (what the model was trained with).
        turns: earlier turns to start from (their prefill happens at the first answer).

    Example:
        >>> chat = ChatSession(model)
        >>> chat.ask("question.wav").text
        >>> chat.ask(text="Say it shorter.").text  # the first turn is not recomputed
    """

    def __init__(self, model: SpeechLLM, *, system: str | None = MODE_SYSTEM, turns: Sequence[Turn] = ()) -> None:
        self.model = model
        self.system = system
        self.turns: list[Turn] = list(turns)
        self._projected: list[dict[tuple[int, str], torch.Tensor]] = []  # per audio: its projected frames
        self._cache = GrowingCache()
        self._cached_keys: list[PositionKey] = []  # what each cached KV position holds

    @property
    def cached_positions(self) -> int:
        """How many positions of the conversation the KV cache holds."""
        return self._cache.get_seq_length()

    def add_user(self, audio: AudioSource | Sequence[AudioSource] | None = None, text: str | None = None) -> None:
        """Add a user turn: audio (one source or several) and/or text."""
        sources = [] if audio is None else list(audio) if isinstance(audio, list) else [audio]
        if not sources and not (text or "").strip():
            raise ValueError("a user turn needs audio or text")
        self.turns.append(Turn("user", text, [load_audio(source) for source in sources]))

    def add_assistant(self, text: str) -> None:
        """Add an assistant turn (e.g. an answer given elsewhere)."""
        self.turns.append(Turn("assistant", text))

    def respond(self, params: GenerationParams = GenerationParams(), on_text: Callable[[str], None] | None = None) -> Answer:
        """Answer the last user turn and add the answer to the conversation.

        Args:
            params: generation parameters.
            on_text: called with each new piece of the answer as it is generated.
        """
        if not self.turns or self.turns[-1].role != "user":
            raise ValueError("respond() needs a conversation that ends with a user turn")
        messages, waves = build_conversation(self.model, self.turns, self.system)
        chat = self.model.render(messages, [len(w) for w in waves])
        keys: list[PositionKey] = list(chat.input_ids)
        for span in chat.audio_spans:
            keys[span.start : span.start + span.length] = [
                (span.audio_index, span.encoder, j) for j in range(span.length)
            ]
        new_waves = waves[len(self._projected) :]
        if new_waves:
            projected = self.model.project(self.model.encode(new_waves))  # {role: [positions, H] per audio}
            self._projected += [
                {(len(self._projected) + i, role): projected[role][i] for role in self.model.roles}
                for i in range(len(new_waves))
            ]
        audio = {key: frames for per_audio in self._projected for key, frames in per_audio.items()}
        batch = self.model.embed([chat], [audio], padding_side="left")  # [1, L, H]

        keep = _common_prefix(self._cached_keys, keys)
        keep = min(keep, len(keys) - 1)  # at least one position must be fed to get the next token
        self._cache.crop(keep - self._cache.get_seq_length())  # cut where the cache and the rendering part
        answer = generate_answers(
            self.model, batch, params, cache=self._cache, on_text=(lambda _, piece: on_text(piece)) if on_text else None
        )[0]
        # The last generated token is never fed back, so the cache ends one short of what was generated.
        self._cached_keys = (keys + answer.token_ids)[: self._cache.get_seq_length()]
        self.turns.append(Turn("assistant", answer.text))
        return answer

    def ask(
        self,
        audio: AudioSource | Sequence[AudioSource] | None = None,
        text: str | None = None,
        *,
        on_text: Callable[[str], None] | None = None,
        **generation,
    ) -> Answer:
        """Add a user turn and answer it.

        Args:
            audio: a path, encoded bytes, ``(array, rate)``, a list of those, or ``None``.
            text: an instruction or question, written after the audio.
            on_text: called with each new piece of the answer.
            **generation: fields of :class:`GenerationParams` (``max_new_tokens``, ``do_sample``, ...).
        """
        self.add_user(audio, text)
        return self.respond(GenerationParams(**generation), on_text)


def _common_prefix(a: Sequence[PositionKey], b: Sequence[PositionKey]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n

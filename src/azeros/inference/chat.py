"""Multi-turn chat that keeps the LLM's KV cache between turns.

A conversation's context is always what the prompt policy renders: each turn the whole conversation is
built again (:func:`azeros.text.conversation`, the i-th audio of the conversation in slots with
``audio_index=i``) and rendered. What is *not* done again is the work already done: each audio's encoder
frames are kept, and the session remembers what each cached KV position holds (a token id, or one position
of one audio), keeps the longest cached prefix that agrees with the new rendering and feeds only the rest.
If the rendering of an earlier answer differs from the tokens that were generated (re-tokenization), the
cache is cut where they part, so the context is still exactly the policy's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from azeros.audio import AudioSource, load_audio
from azeros.inference.generate import answer_batch
from azeros.llm import Answer, GenerationParams, GrowingCache
from azeros.models import EncodedAudio, SpeechLLM, build_batch, render
from azeros.text import MODE_SYSTEM, AudioContent, Message, PromptTurn, SystemMessage, conversation

__all__ = ["ChatSession", "Turn", "chat", "conversation_of", "prompt_length"]


@dataclass
class Turn:
    """One message of a conversation, its audio decoded.

    Attributes:
        role: ``user`` or ``assistant``.
        text: the typed text (a user's instruction or question, an assistant's answer).
        audios: a user turn's 16 kHz waveforms, in the order they were given.
    """

    role: Literal["user", "assistant"]
    text: str | None = None
    audios: list[np.ndarray] = field(default_factory=list)


def conversation_of(
    model: SpeechLLM, turns: Sequence[Turn], system: SystemMessage = MODE_SYSTEM
) -> tuple[list[Message], list[np.ndarray]]:
    """Messages and waveforms of a conversation, numbering its audios in order of appearance.

    Args:
        model: the model whose audio slots and chat mode are used.
        turns: user and assistant turns, oldest first.
        system: the system message, sent verbatim; :data:`azeros.text.MODE_SYSTEM`: the chat mode's.

    Returns:
        ``(messages, waves)``, ``waves[i]`` being the audio of slots with ``audio_index=i``.
    """
    prompt_turns = [PromptTurn(turn.role, turn.text, (AudioContent(),) * len(turn.audios)) for turn in turns]
    messages = conversation(prompt_turns, mode=model.chat_mode, system=system, encoders=model.roles)
    return messages, [wave for turn in turns for wave in turn.audios]


def prompt_length(model: SpeechLLM, turns: Sequence[Turn], system: SystemMessage = MODE_SYSTEM) -> int:
    """LLM positions a conversation takes: text tokens and each audio's projected frames."""
    messages, waves = conversation_of(model, turns, system)
    return len(render(model, messages, [len(w) for w in waves]).input_ids)


PositionKey = int | tuple[int, str, int]  # a token id, or (audio index, encoder, offset) of an audio position


class ChatSession:
    """A conversation with one model that reuses the KV cache of everything already seen.

    Args:
        model: the model.
        system: the system message, sent verbatim; by default the chat mode's (what the model was trained with).
        turns: earlier turns to start from (their prefill happens at the first answer).

    Example:
        >>> chat = ChatSession(model)
        >>> chat.ask("question.wav").text
        >>> chat.ask(text="Say it shorter.").text  # the first turn is not recomputed
    """

    def __init__(self, model: SpeechLLM, *, system: SystemMessage = MODE_SYSTEM, turns: Sequence[Turn] = ()) -> None:
        self.model = model
        self.system = system
        self.turns: list[Turn] = list(turns)
        self._frames: list[dict[str, torch.Tensor]] = []  # per audio so far: its encoder frames [t, d] by role
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

    @torch.no_grad()
    def respond(self, params: GenerationParams = GenerationParams(), on_text: Callable[[str], None] | None = None) -> Answer:
        """Answer the last user turn and add the answer to the conversation.

        Args:
            params: generation parameters.
            on_text: called with each new piece of the answer as it is generated.
        """
        if not self.turns or self.turns[-1].role != "user":
            raise ValueError("respond() needs a conversation that ends with a user turn")
        messages, waves = conversation_of(self.model, self.turns, self.system)
        samples = [len(w) for w in waves]
        chat = render(self.model, messages, samples)
        keys: list[PositionKey] = list(chat.input_ids)
        for span in chat.audio_spans:
            keys[span.start : span.start + span.length] = [
                (span.audio_index, span.encoder, j) for j in range(span.length)
            ]
        new_waves = waves[len(self._frames) :]
        if new_waves:  # only audio not heard before is encoded
            encoded = self.model.encode(new_waves)  # {role: (frames [n, t, d], lengths [n])}
            self._frames += [
                {role: frames[i, : int(lengths[i])] for role, (frames, lengths) in encoded.items()}
                for i in range(len(new_waves))
            ]
        audio = EncodedAudio.from_rows([samples], self._frames)
        batch = build_batch(self.model, [messages], audio, padding_side="left", chats=[chat])  # [1, L, H]

        keep = _common_prefix(self._cached_keys, keys)
        keep = min(keep, len(keys) - 1)  # at least one position must be fed to get the next token
        self._cache.crop(keep - self._cache.get_seq_length())  # cut where the cache and the rendering part
        self._cached_keys = self._cached_keys[:keep]  # still true if the answer is interrupted
        answer = answer_batch(
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
        params: GenerationParams = GenerationParams(),
        *,
        on_text: Callable[[str], None] | None = None,
    ) -> Answer:
        """Add a user turn and answer it.

        Args:
            audio: a path, encoded bytes, ``(array, rate)``, a list of those, or ``None``.
            text: an instruction or question, written after the audio.
            params: generation parameters.
            on_text: called with each new piece of the answer.

        If answering is interrupted (Ctrl-C: ``KeyboardInterrupt``), the turn is taken back: the session is
        as it was before, and the next question follows the last answered one.
        """
        turns, frames = len(self.turns), len(self._frames)
        self.add_user(audio, text)
        try:
            return self.respond(params, on_text)
        except BaseException:
            del self.turns[turns:], self._frames[frames:]
            raise


def chat(
    model: SpeechLLM,
    audio: AudioSource | Sequence[AudioSource] | None = None,
    text: str | None = None,
    *,
    history: ChatSession | None = None,
    system: SystemMessage = MODE_SYSTEM,
    params: GenerationParams = GenerationParams(),
    on_text: Callable[[str], None] | None = None,
) -> Answer:
    """Answer one turn of a conversation; greedy unless ``params.do_sample``.

    Args:
        model: the model.
        audio: a path, encoded bytes, ``(array, rate)``, a list of those, or ``None``.
        text: an instruction or question written after the audio.
        history: a :class:`ChatSession` to continue (the turn and its answer are added to it and its cached
            prefix is reused); ``None`` for a one-off question.
        system: the system message of a new conversation, sent verbatim; by default the chat mode's.
        params: generation parameters.
        on_text: called with each new piece of the answer.
    """
    session = history if history is not None else ChatSession(model, system=system)
    return session.ask(audio, text, params, on_text=on_text)


def _common_prefix(a: Sequence[PositionKey], b: Sequence[PositionKey]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n

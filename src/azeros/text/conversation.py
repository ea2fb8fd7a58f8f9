"""The one builder of conversations: ``[system?, user, assistant, user, ...]`` with audio slots.

Target generation, training, inference, chat, serving and evaluation all build what the LLM is shown here,
so the system message and the layout of the audio cannot drift apart between them (DESIGN's prompt policy):

* the system message is a text, ``None`` (no system turn), or :data:`MODE_SYSTEM`, which stands for the
  mode's own. The stand-in is an object, never a string: a client whose system message is the text
  ``"default"`` or ``"mode"`` gets exactly that text;
* the i-th audio of the conversation goes in slots with ``audio_index=i``: as its oracle text when the frozen
  LLM reads it (``encoders=None``, target generation, text systems), or in the slots a model with
  ``encoders`` hears it in (:func:`azeros.text.heard_parts`: training, inference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from azeros.text.modes import Mode, instruction_for
from azeros.text.prompt import EncoderRole, Message, Part, heard_parts, oracle_parts, user_message

__all__ = ["MODE_SYSTEM", "AudioContent", "PromptTurn", "SystemChoice", "SystemMessage", "conversation",
           "target_messages"]


class SystemChoice(Enum):
    """A system message chosen by rule rather than written out."""

    MODE = "the mode's system message"


MODE_SYSTEM = SystemChoice.MODE  # ``system=MODE_SYSTEM``: the mode's own system message (none for most modes)
SystemMessage = str | None | SystemChoice  # a text, no system turn, or the mode's


@dataclass(frozen=True)
class AudioContent:
    """What is known of what one audio says: nothing at inference; a target's oracle in generation and training.

    Attributes:
        oracle: the oracle the target was generated from (``s`` or ``sp``); ``None`` at inference.
        transcript: the normalized transcript; ``None`` at inference (unknown, filled by audio).
        meta: known speaker labels (only an ``sp`` oracle shows them).
    """

    oracle: Literal["s", "sp"] | None = None
    transcript: str | None = None
    meta: Mapping[str, str] | None = None


@dataclass(frozen=True)
class PromptTurn:
    """One turn of a conversation before it becomes messages.

    Attributes:
        role: ``user`` or ``assistant``.
        text: the typed text (a user's instruction or question, written after the audio; an assistant's answer).
        audio: a user turn's audios, in the order they were given.
    """

    role: Literal["user", "assistant"]
    text: str | None = None
    audio: tuple[AudioContent, ...] = ()


def conversation(
    turns: Sequence[PromptTurn],
    *,
    mode: Mode,
    system: SystemMessage = MODE_SYSTEM,
    encoders: Sequence[EncoderRole] | None = None,
) -> list[Message]:
    """The messages of a conversation, numbering its audios in order of appearance.

    Args:
        turns: user and assistant turns, oldest first.
        mode: whose system message :data:`MODE_SYSTEM` stands for.
        system: the system message: a text, ``None`` for no system turn, or :data:`MODE_SYSTEM`.
        encoders: ``None`` for each audio's oracle text as the frozen LLM reads it; the roles of a model's
            encoders for the audio slots that model hears it in.

    Returns:
        ``[system?, turns...]`` messages.
    """
    system_text = mode.system_message if system is MODE_SYSTEM else system
    messages = [Message("system", (system_text,))] if system_text else []
    audio_index = 0
    for turn in turns:
        if turn.role == "assistant":
            messages.append(Message("assistant", (turn.text or "",)))
            continue
        parts: list[Part] = []
        for audio in turn.audio:
            if encoders is None:
                parts += oracle_parts(audio.oracle, audio.transcript, audio.meta, audio_index=audio_index)
            else:
                parts += heard_parts(encoders, audio.oracle, audio.transcript, audio.meta, audio_index=audio_index)
            audio_index += 1
        messages.append(user_message(parts, turn.text))
    return messages


def target_messages(
    mode: Mode,
    transcript: str,
    meta: Mapping[str, str] | None,
    *,
    language: str | None = None,
    key: str = "",
    system: SystemMessage = MODE_SYSTEM,
    instruction: str | None = None,
    encoders: Sequence[EncoderRole] | None = None,
) -> list[Message]:
    """The conversation a mode shows the frozen LLM for one utterance (without the answer).

    Args:
        mode: the generation mode.
        transcript: normalized transcript.
        meta: known speaker labels.
        language: the utterance's language (picks the instruction's language).
        key: the cut id; picks TSIT_s's ASR prompt stably.
        system: the system message; :data:`MODE_SYSTEM` takes the mode's. Training passes the stored one.
        instruction: the instruction; ``None`` takes the mode's. Training passes the stored one.
        encoders: ``None`` for the oracle as the frozen LLM reads it (target generation); the roles of a
            model's encoders for the audio slots it hears the utterance in (see :func:`heard_parts`).

    Returns:
        ``[system?, user]`` messages.
    """
    instruction_text = instruction_for(mode, language, key) if instruction is None else instruction
    turn = PromptTurn("user", instruction_text, (AudioContent(mode.oracle, transcript, meta),))
    return conversation([turn], mode=mode, system=system, encoders=encoders)

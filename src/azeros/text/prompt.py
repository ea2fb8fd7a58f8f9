"""The one prompt policy: oracle text, audio placement and chat rendering, in one place.

Every path that puts an utterance in front of the LLM goes through :class:`PromptRenderer`:

* target generation renders the conversation with the **oracle text** in each audio slot;
* training and inference render the **same** conversation with **audio positions** in each slot.

Both render the LLM's own chat template once, with a sentinel where each slot goes, split the result at
the sentinels and tokenize the pieces separately. So the context around the audio (template, system
message, instruction) has the same tokens in both paths by construction, not by luck (a test checks it
token for token; an ``s`` utterance heard through two encoders adds the ``sp`` tags, see below).

The oracle text (docs/design.md):

* ``s``: the normalized transcript;
* ``sp``: ``<audio><meta>age: …, gender: …, emotion: …</meta><text>…</text></audio>`` with unknown
  labels left out.

Audio placement (:func:`heard_parts`) depends on the model's encoders, not on the mode a target came from:

* one encoder (semantic): its frames replace the whole oracle, in every mode (``s`` and ``sp`` alike);
* two encoders: every utterance is heard through both, in the ``sp`` oracle's layout
  ``<audio><meta>[paralinguistic]</meta><text>[semantic]</text></audio>``, in every mode. An ``s`` target
  (SIFT_s) is learnt in that layout too: that is how the paper's stage 2, SIFT_s + SIFT_sp with only the
  paralinguistic projector training, teaches it to keep the semantic answers (one semantic slot would give
  that projector no gradient). Inference uses the same layout, with or without the user's text.

Everything else is the target's own context, reused verbatim: the system message and the instruction. A
``<meta>`` slot that an ``sp`` oracle left empty (no known labels) stays empty in training too, so the model
is never shown audio where the LLM was told there was nothing to hear; an ``s`` oracle never said anything
about the speaker, so its ``<meta>`` slot is always filled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from azeros.text.labels import META_KEYS

__all__ = [
    "IGNORE_INDEX",
    "AudioSlot",
    "AudioSpan",
    "CHAT_TEMPLATES",
    "Message",
    "PromptRenderer",
    "RenderedChat",
    "heard_parts",
    "meta_text",
    "oracle_parts",
    "oracle_text",
    "user_message",
]

IGNORE_INDEX = -100  # label of every position that is not supervised

EncoderRole = Literal["semantic", "paralinguistic"]


@dataclass(frozen=True)
class AudioSlot:
    """A place in a message where one encoder's view of one audio goes.

    Attributes:
        encoder: the encoder whose projected frames fill the slot (``semantic`` or ``paralinguistic``).
        text: what the oracle writes here. ``""`` means the oracle had nothing (e.g. no known labels): the
            slot then stays empty in every path. ``None`` means no oracle text stands here (inference on new
            audio, or the ``<meta>`` slot of an ``s`` oracle): the slot is always filled with audio.
        audio_index: which audio of the conversation (0 for the first).
    """

    encoder: EncoderRole
    text: str | None
    audio_index: int = 0


Part = str | AudioSlot


@dataclass(frozen=True)
class Message:
    """One chat message whose content may hold audio slots."""

    role: Literal["system", "user", "assistant"]
    parts: tuple[Part, ...]

    def oracle_content(self) -> str:
        """The content with every slot written as its oracle text (what a text-only LLM is shown)."""
        if any(isinstance(p, AudioSlot) and p.text is None for p in self.parts):
            raise ValueError("an audio slot without oracle text cannot be written as text")
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)


@dataclass(frozen=True)
class AudioSpan:
    """Where one slot's audio positions sit in a rendered token sequence."""

    start: int
    length: int
    encoder: EncoderRole
    audio_index: int


@dataclass
class RenderedChat:
    """A conversation rendered to token ids.

    Attributes:
        input_ids: the tokens; audio positions hold ``placeholder_id``.
        labels: ``IGNORE_INDEX`` everywhere except the answer and its end-of-turn token (``None`` when no
            answer was given).
        audio_spans: where audio goes, in order.
        prompt_length: number of tokens before the answer.
    """

    input_ids: list[int]
    labels: list[int] | None
    audio_spans: list[AudioSpan] = field(default_factory=list)
    prompt_length: int = 0


class ChatTokenizer(Protocol):
    """What the renderer needs from a tokenizer (a transformers tokenizer satisfies it)."""

    eos_token_id: int | None

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> Any: ...

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


def meta_text(meta: Mapping[str, str]) -> str:
    """``{"gender": "male", "emotion": "happy"}`` -> ``"gender: male, emotion: happy"`` (oracle key order)."""
    return ", ".join(f"{key}: {meta[key]}" for key in META_KEYS if meta.get(key))


def _sp_layout(meta: str | None, transcript: str | None, audio_index: int) -> tuple[Part, ...]:
    return (
        "<audio><meta>",
        AudioSlot("paralinguistic", meta, audio_index),
        "</meta><text>",
        AudioSlot("semantic", transcript, audio_index),
        "</text></audio>",
    )


def oracle_parts(
    oracle: Literal["s", "sp"], transcript: str, meta: Mapping[str, str] | None = None, *, audio_index: int = 0
) -> tuple[Part, ...]:
    """The oracle of one utterance as the frozen LLM reads it (target generation): tags and text slots.

    Args:
        oracle: ``"s"`` (the transcript in one semantic slot) or ``"sp"`` (the tagged layout, labels in the
            paralinguistic slot, transcript in the semantic one).
        transcript: the normalized transcript.
        meta: known speaker labels (see :func:`azeros.text.labels.speaker_meta`).
        audio_index: which audio of the conversation this is.

    Returns:
        A tuple of strings and :class:`AudioSlot`; joined with oracle text it is :func:`oracle_text`.
    """
    if oracle == "s":
        return (AudioSlot("semantic", transcript, audio_index),)
    if oracle == "sp":
        return _sp_layout(meta_text(meta or {}), transcript, audio_index)
    raise ValueError(f"unknown oracle kind {oracle!r}; expected 's' or 'sp'")


def heard_parts(
    encoders: Sequence[EncoderRole],
    oracle: Literal["s", "sp"] | None = None,
    transcript: str | None = None,
    meta: Mapping[str, str] | None = None,
    *,
    audio_index: int = 0,
) -> tuple[Part, ...]:
    """How a model with ``encoders`` hears one utterance (training and inference): its audio slots.

    One (semantic) encoder: one slot holding the whole oracle. Two encoders: the ``sp`` layout whatever
    the oracle (see the module docstring for why).

    Args:
        encoders: the roles of the model's encoders.
        oracle: the oracle the target was generated from; ``None`` at inference.
        transcript: the normalized transcript; ``None`` at inference (unknown, filled by audio).
        meta: known speaker labels; only an ``sp`` oracle showed them.
        audio_index: which audio of the conversation this is.

    Returns:
        A tuple of strings and :class:`AudioSlot` whose slot texts are what the oracle showed there.
    """
    known = transcript is not None
    roles = set(encoders)
    if len(encoders) == 1 and roles == {"semantic"}:
        return (AudioSlot("semantic", oracle_text(oracle, transcript, meta) if known else None, audio_index),)
    if len(encoders) == 2 and roles == {"semantic", "paralinguistic"}:
        labels = meta_text(meta or {}) if known and oracle == "sp" else None
        return _sp_layout(labels, transcript, audio_index)
    raise ValueError(f"expected a semantic encoder and at most one paralinguistic, got {list(encoders)}")


def oracle_text(oracle: Literal["s", "sp"], transcript: str, meta: Mapping[str, str] | None = None) -> str:
    """The oracle text of an utterance: what the frozen LLM is shown in place of the speech."""
    return Message("user", oracle_parts(oracle, transcript, meta)).oracle_content()


def user_message(parts: Sequence[Part], text: str | None = None) -> Message:
    """A user turn: audio parts, then (after one space) an instruction or question, if any."""
    text = (text or "").strip()
    if not text:
        return Message("user", tuple(parts))
    return Message("user", (*parts, f" {text}") if parts else (text,))


# The reference's ChatML: a system turn only when one is given (no default), then the turns.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT_TEMPLATES = {"chatml": CHATML_TEMPLATE}

_SENTINEL = "\ue000{}\ue001"
_SENTINEL_RE = re.compile("\ue000(\\d+)\ue001")
_ANSWER_SENTINEL = "\ue002"


class PromptRenderer:
    """Renders conversations with the LLM's own chat template: the one place prompts become tokens.

    Args:
        tokenizer: the LLM's tokenizer (with a chat template).
        placeholder_id: the token id written at audio positions (the model overwrites their embeddings).
        chat_template: renders with this template instead of the tokenizer's: a name from
            :data:`CHAT_TEMPLATES` (``chatml``: the reference's, no default system prompt) or a Jinja template.
    """

    def __init__(self, tokenizer: ChatTokenizer, placeholder_id: int | None = None,
                 chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.chat_template = CHAT_TEMPLATES.get(chat_template, chat_template) if chat_template else None
        self.end_of_turn_id = self._find_end_of_turn()
        self.placeholder_id = self.end_of_turn_id if placeholder_id is None else placeholder_id

    @property
    def stop_ids(self) -> list[int]:
        """Token ids that end an answer: the template's end-of-turn token and the tokenizer's eos."""
        ids = [self.end_of_turn_id]
        eos = self.tokenizer.eos_token_id
        if eos is not None and eos not in ids:
            ids.append(eos)
        return ids

    def _tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _template(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=self.chat_template
        )

    def _find_end_of_turn(self) -> int:
        # The first token the template writes after an assistant's content ends the turn.
        chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _ANSWER_SENTINEL}]
        rendered = self._template(chat, add_generation_prompt=False)
        tail = self._tokens(rendered.split(_ANSWER_SENTINEL, 1)[1].lstrip(" ")) if _ANSWER_SENTINEL in rendered else []
        if tail:
            return tail[0]
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer's chat template ends no turn and it has no eos token")
        return self.tokenizer.eos_token_id

    @property
    def adds_default_system(self) -> bool:
        """Whether the chat template writes a system turn of its own into a conversation that has none."""
        user = [{"role": "user", "content": _ANSWER_SENTINEL}]
        given = self._template([{"role": "system", "content": "\ue003"}, *user], add_generation_prompt=False)
        alone = self._template(user, add_generation_prompt=False)
        between = given.split("\ue003", 1)[-1].split(_ANSWER_SENTINEL, 1)[0]  # end of system, start of user
        return bool(between) and alone.split(_ANSWER_SENTINEL, 1)[0].endswith(between)

    def render(
        self,
        messages: Sequence[Message],
        *,
        audio_lengths: Mapping[tuple[int, str], int] | None = None,
        answer: str | None = None,
        finished: bool = True,
    ) -> RenderedChat:
        """Render a conversation, ready for an assistant answer.

        Args:
            messages: the conversation, ending with a user turn.
            audio_lengths: ``None`` to write each slot's oracle text (target generation). Otherwise the
                number of audio positions per ``(audio_index, encoder)``; a slot whose oracle text is
                ``""`` stays empty.
            answer: the assistant's answer to supervise (training), or ``None``.
            finished: whether the answer ended on its own; a cut-short answer gets no end-of-turn token.

        Returns:
            The token ids, the labels (answer and end-of-turn only) and the audio spans.
        """
        slots: list[AudioSlot] = []
        chat = []
        for message in messages:
            content = []
            for part in message.parts:
                if isinstance(part, AudioSlot):
                    content.append(_SENTINEL.format(len(slots)))
                    slots.append(part)
                else:
                    content.append(part)
            chat.append({"role": message.role, "content": "".join(content)})
        rendered = self._template(chat, add_generation_prompt=True)

        ids: list[int] = []
        spans: list[AudioSpan] = []
        pieces = _SENTINEL_RE.split(rendered)  # text, slot number, text, slot number, ..., text
        if len(pieces) != 2 * len(slots) + 1:
            raise ValueError("the chat template dropped or repeated an audio slot")
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                ids.extend(self._tokens(piece))
                continue
            slot = slots[int(piece)]
            if audio_lengths is None or slot.text == "":
                if slot.text is None:
                    raise ValueError("an audio slot without oracle text needs audio_lengths")
                ids.extend(self._tokens(slot.text))
                continue
            length = audio_lengths[(slot.audio_index, slot.encoder)]
            spans.append(AudioSpan(len(ids), length, slot.encoder, slot.audio_index))
            ids.extend([self.placeholder_id] * length)

        prompt_length = len(ids)
        labels = None
        if answer is not None:
            answer_ids = self._tokens(answer) + ([self.end_of_turn_id] if finished else [])
            labels = [IGNORE_INDEX] * prompt_length + answer_ids
            ids.extend(answer_ids)
        return RenderedChat(ids, labels, spans, prompt_length)

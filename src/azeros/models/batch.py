"""The one way conversations, audio and answers become an embedded batch: training, inference and evaluation.

A batch is built in three steps, each done once here:

1. render every conversation with the LLM's chat template (:func:`render`): an audio slot takes as many
   positions as its projector will output for that audio, or (``audio=None``) the slot's oracle text, which is
   how a text-only system reads the same conversation;
2. the frozen encoders' frames of every audio (:class:`EncodedAudio`): encoded here from waveforms
   (:func:`encode_audio`), or read from a cache by the caller (training, chat sessions);
3. project the frames and scatter them into the audio positions (:meth:`SpeechLLM.embed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from azeros.models.encoders import pad_frames
from azeros.models.speech_llm import EmbeddedBatch, EncoderRole, SpeechLLM
from azeros.text import Message, RenderedChat

__all__ = ["EncodedAudio", "build_batch", "encode_audio", "render"]


@dataclass
class EncodedAudio:
    """The frozen encoders' output for the audios of a batch, conversation after conversation.

    Attributes:
        samples: per conversation, the length in samples of each of its audios (``audio_index`` order): the
            number of audio positions follows from it.
        frames: ``{role: (frames [n, t, d], lengths [n])}`` for the ``n`` audios of the whole batch.
    """

    samples: list[list[int]]
    frames: dict[EncoderRole, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, samples: list[list[int]], rows: Sequence[Mapping[EncoderRole, torch.Tensor]]) -> EncodedAudio:
        """From each audio's own frames ``{role: [t, d]}`` (e.g. from a cache), in batch order."""
        roles = list(rows[0]) if rows else []
        return cls(samples, {role: pad_frames([row[role] for row in rows]) for role in roles})


def encode_audio(model: SpeechLLM, waves: Sequence[Sequence[np.ndarray]]) -> EncodedAudio:
    """Run the frozen encoders over every conversation's 16 kHz waveforms (``waves[c][i]``: audio ``i`` of ``c``)."""
    flat = [wave for conversation in waves for wave in conversation]
    return EncodedAudio([[len(wave) for wave in conversation] for conversation in waves],
                        model.encode(flat) if flat else {})


def render(
    model: SpeechLLM,
    messages: Sequence[Message],
    audio_samples: Sequence[int] | None,
    answer: str | None = None,
    finished: bool = True,
) -> RenderedChat:
    """Render one conversation for ``model`` (see :meth:`azeros.text.PromptRenderer.render`).

    Args:
        model: the model (its renderer and audio position counts).
        messages: the conversation.
        audio_samples: ``audio_samples[i]``: the length in samples of the conversation's i-th audio; ``None``
            writes every slot's oracle text instead (the frozen LLM reading, as when targets were generated).
        answer: the answer to supervise, or ``None``.
        finished: whether the answer ended by itself (only then is its end-of-turn token supervised).
    """
    lengths = None if audio_samples is None else {
        (index, role): count
        for index, samples in enumerate(audio_samples)
        for role, count in model.audio_positions(samples).items()
    }
    return model.renderer.render(messages, audio_lengths=lengths, answer=answer, finished=finished)


def build_batch(
    model: SpeechLLM,
    conversations: Sequence[Sequence[Message]],
    audio: EncodedAudio | None,
    answers: Sequence[str | None] | None = None,
    finished: Sequence[bool] | None = None,
    *,
    padding_side: Literal["left", "right"] = "right",
    chats: Sequence[RenderedChat] | None = None,
) -> EmbeddedBatch:
    """Render, project and embed a batch of conversations with their audio.

    Args:
        model: the model.
        conversations: per item, its messages.
        audio: the encoders' frames of every item's audios; ``None``: no audio, each slot is read as its
            oracle text.
        answers: per item, the answer to supervise (training, scoring) or ``None``.
        finished: per item, whether its answer ended by itself.
        padding_side: ``left`` for generation, ``right`` for training.
        chats: the conversations already rendered with :func:`render` (``None``: rendered here).

    Returns:
        The batch, padded to its longest conversation.
    """
    count = len(conversations)
    samples = audio.samples if audio is not None else [None] * count
    if chats is None:
        answers = answers or [None] * count
        finished = finished or [True] * count
        chats = [
            render(model, messages, audio_samples, answer, done)
            for messages, audio_samples, answer, done in zip(conversations, samples, answers, finished, strict=True)
        ]
    projected = model.project(audio.frames) if audio is not None and audio.frames else {}  # {role: [positions_i, H]}
    per_chat: list[dict[tuple[int, str], torch.Tensor]] = []
    cursor = 0
    for audio_samples in samples:
        audios = len(audio_samples or ())
        per_chat.append({(i, role): projected[role][cursor + i] for i in range(audios) for role in model.roles})
        cursor += audios
    return model.embed(chats, per_chat, padding_side)

"""Answering with a SpeechLLM: batches of conversations in, :class:`azeros.llm.Answer` out.

Greedy answers of a batch are the same as answering each item alone: audio is encoded and projected per
utterance, the batch is left-padded and masked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from azeros.audio import AudioSource, load_audio
from azeros.llm import Answer, GenerationParams, GrowingCache, TextCallback, TokenStreamer, generate_from_embeddings
from azeros.models import EmbeddedBatch, SpeechLLM, build_batch, encode_audio
from azeros.text import IGNORE_INDEX, MODE_SYSTEM, AudioContent, Message, PromptTurn, SystemMessage, conversation

__all__ = ["answer_batch", "answer_conversations", "answer_cross_entropy", "generate"]


def answer_batch(
    model: SpeechLLM,
    batch: EmbeddedBatch,
    params: GenerationParams = GenerationParams(),
    *,
    cache: GrowingCache | None = None,
    on_text: TextCallback | None = None,
    stop: Callable[[], Sequence[bool]] | None = None,
) -> list[Answer]:
    """Generate answers for a left-padded embedded batch, optionally continuing a KV cache and streaming text.

    Args:
        model: the model.
        batch: the whole conversation(s), embedded; a cached prefix is skipped, not recomputed.
        params: generation parameters.
        cache: KV cache of a prefix of the (single-row) batch; extended in place.
        on_text: called with ``(row, piece)`` as text is generated.
        stop: asked after every new token which rows to stop (e.g. nobody waits for them any more).

    Returns:
        One answer per row.
    """
    stop_ids = model.renderer.stop_ids
    streamer = TokenStreamer(model.tokenizer, stop_ids, on_text) if on_text else None
    return generate_from_embeddings(
        model.llm, model.tokenizer, stop_ids, batch.inputs_embeds, batch.attention_mask, batch.text_ids, params,
        cache=cache, streamer=streamer, stop=stop,
    )


@torch.no_grad()
def answer_conversations(
    model: SpeechLLM,
    conversations: Sequence[Sequence[Message]],
    waves: Sequence[Sequence[np.ndarray]] | None,
    params: GenerationParams = GenerationParams(),
) -> list[Answer]:
    """Answer conversations built with :func:`azeros.text.conversation`.

    Args:
        model: the model.
        conversations: per item, its messages.
        waves: per item, its 16 kHz waveforms in ``audio_index`` order; ``None``: no audio, every slot is read
            as its oracle text (a text-only system).
        params: generation parameters.
    """
    audio = encode_audio(model, waves) if waves is not None else None
    return answer_batch(model, build_batch(model, conversations, audio, padding_side="left"), params)


@torch.no_grad()
def answer_cross_entropy(
    model: SpeechLLM,
    conversations: Sequence[Sequence[Message]],
    waves: Sequence[Sequence[np.ndarray]] | None,
    answers: Sequence[Answer],
) -> list[float]:
    """Per item, the mean negative log-likelihood per token of ``answers[i]`` given its conversation.

    Args:
        model: the model.
        conversations: per item, its messages.
        waves: per item, its waveforms; ``None`` reads every slot as its oracle text.
        answers: per item, the answer to score (and whether it ended by itself).
    """
    audio = encode_audio(model, waves) if waves is not None else None
    batch = build_batch(model, conversations, audio, [a.text for a in answers],
                        [a.finish_reason == "stop" for a in answers], padding_side="right")
    logits = model(batch, return_logits=True).logits  # [b, L, V]
    targets = batch.labels[:, 1:]  # position t predicts token t+1
    losses = nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2).float(), targets, ignore_index=IGNORE_INDEX, reduction="none"
    )  # [b, L-1]
    counts = (targets != IGNORE_INDEX).sum(dim=1)
    return [float(row_sum / count) for row_sum, count in zip(losses.sum(dim=1), counts, strict=True)]


@torch.no_grad()
def generate(
    model: SpeechLLM,
    audios: Sequence[AudioSource | None],
    texts: Sequence[str | None] | None = None,
    *,
    system: SystemMessage = MODE_SYSTEM,
    params: GenerationParams = GenerationParams(),
) -> list[Answer]:
    """Answer a batch of spoken (and/or typed) questions; greedy unless ``params.do_sample``.

    Args:
        model: the model.
        audios: per item, a path, encoded bytes, ``(array, rate)`` or ``None`` for text only.
        texts: per item, an optional instruction or question written after the audio.
        system: the system message; by default the model's chat mode's (none for SIFT modes).
        params: generation parameters.

    Returns:
        One :class:`Answer` per item, in input order.
    """
    texts = list(texts) if texts is not None else [None] * len(audios)
    if len(texts) != len(audios):
        raise ValueError(f"{len(audios)} audios but {len(texts)} texts")
    waves = [[] if audio is None else [load_audio(audio)] for audio in audios]
    conversations = [
        conversation([PromptTurn("user", text, (AudioContent(),) * len(item_waves))], mode=model.chat_mode,
                     system=system, encoders=model.roles)
        for item_waves, text in zip(waves, texts, strict=True)
    ]
    return answer_conversations(model, conversations, waves, params)

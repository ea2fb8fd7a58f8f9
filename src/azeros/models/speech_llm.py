"""SpeechLLM: a frozen causal LM, frozen speech encoders and one trainable projector per encoder.

Audio reaches the LLM the way DESIGN.md's prompt policy says: the conversation is rendered with the
LLM's own chat template by :class:`azeros.text.PromptRenderer`, each audio slot becomes as many positions
as its projector outputs, and the projected frames are scattered into those positions of the token
embeddings (after a count check). Only the projectors have ``requires_grad``.
"""

from __future__ import annotations

import json
import math
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

from azeros.audio import AudioSource, load_audio
from azeros.kv_cache import GrowingCache, PrefixStates, cache_keyword
from azeros.models.encoders import SpeechEncoder, build_encoder
from azeros.models.llm import load_llm, resolve_dtype
from azeros.models.projector import Projector
from azeros.repetition import RepetitionPenalty, default_repetition_penalty
from azeros.text import (
    CHAT_TEMPLATES,
    IGNORE_INDEX,
    Message,
    PromptRenderer,
    RenderedChat,
    get_mode,
    heard_parts,
    user_message,
)

__all__ = ["Answer", "EncoderSpec", "ForwardOutput", "SpeechLLM", "SpeechLLMConfig", "TokenBatch", "shared_prefix"]

EncoderRole = Literal["semantic", "paralinguistic"]
ROLES: tuple[EncoderRole, ...] = ("semantic", "paralinguistic")
# Weight names of the reference checkpoints, kept so their projectors load here.
PROJECTOR_KEYS = {"semantic": "speech_encoder_projector", "paralinguistic": "paraling_encoder_projector"}
WEIGHT_FILES = ("model.safetensors", "pretrained.safetensors", "pretrained.pt", "model.pt")
_DEFAULT = "default"


@dataclass
class EncoderSpec:
    """One frozen encoder of a model.

    Attributes:
        kind: ``whisper``, ``whisper-ct2`` or ``ge2e``.
        role: ``semantic`` (fills ``<text>``) or ``paralinguistic`` (fills ``<meta>``).
        options: arguments of the encoder class (e.g. ``{"path": "whisper-tiny.en-ct2"}``).
    """

    kind: str
    role: EncoderRole = "semantic"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpeechLLMConfig:
    """Everything needed to rebuild a SpeechLLM; saved as ``config.json``.

    Attributes:
        llm: hub id, folder, ``.gguf`` file or embedded alias of the frozen LLM.
        encoders: the encoders, semantic first.
        projector_stack: k, frames concatenated per LLM position.
        projector_hidden: hidden width of the projectors (``None``: the LLM's width).
        projector_compress: the semantic projector's outputs are CTC-compressed before the LLM reads them
            (:class:`azeros.models.projector.Projector`; needs a projector aligned by CTC first).
        chat_mode: the mode whose system message the model answers under (e.g. ``sift_ssp``'s); ``None``
            picks ``sift_sp`` with two encoders and ``sift_s`` with one. The audio layout is not the mode's:
            a model hears every utterance in the one layout its encoders give
            (:func:`azeros.text.heard_parts`), as in training. Saved configs with the former
            ``question_mode`` key still load (the key is ignored: the layout no longer depends on a mode).
        dtype: the LLM's dtype (``auto``, ``fp32``, ``bf16``, ``fp16``).
        chat_template: replaces the tokenizer's chat template everywhere (training, inference, serving): a
            name from :data:`azeros.text.CHAT_TEMPLATES` (``chatml``: the reference's, no default system
            prompt) or a Jinja template; ``None`` keeps the LLM's own.
    """

    llm: str
    encoders: list[EncoderSpec]
    projector_stack: int = 4
    projector_hidden: int | None = None
    projector_compress: bool = False
    chat_mode: str | None = None
    dtype: str = "auto"
    chat_template: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": "azeros", **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpeechLLMConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}  # tolerate unknown keys
        known["encoders"] = [EncoderSpec(**e) for e in known.get("encoders", [])]
        return cls(**known)


@dataclass
class Answer:
    """One generated answer.

    Attributes:
        text: the answer, special tokens removed.
        finish_reason: ``stop`` (ended by itself) or ``length`` (cut at ``max_new_tokens``).
        token_ids: the generated ids, without the end token.
    """

    text: str
    finish_reason: Literal["stop", "length"]
    token_ids: list[int]


@dataclass
class ForwardOutput:
    """A teacher-forced pass: loss and accuracy over the supervised answer tokens."""

    loss: torch.Tensor  # token-mean cross-entropy, a scalar
    correct: int  # supervised next tokens the argmax predicts
    tokens: int  # supervised next tokens
    logits: torch.Tensor | None = None  # [b, L, V], only when asked for


@dataclass
class TokenBatch:
    """LLM inputs of a batch: embeddings with audio in place, mask and (for training) labels."""

    inputs_embeds: torch.Tensor  # [b, L, H]
    attention_mask: torch.Tensor  # [b, L]
    labels: torch.Tensor | None  # [b, L], IGNORE_INDEX where unsupervised
    shared_prefix: tuple[int, ...] = ()  # token ids every row opens with, before any audio or supervised token
    text_ids: list[list[int]] = field(default_factory=list)  # per row, the prompt's text tokens (no audio)


class SpeechLLM(nn.Module):
    """A frozen LLM that hears through frozen encoders and trainable projectors.

    Args:
        config: the model description.
        llm: an already loaded LLM (otherwise loaded from ``config.llm``).
        tokenizer: its tokenizer (required with ``llm``).
        encoders: already built encoders by role (otherwise built from ``config.encoders``).
        verbose: print the parameter counts at construction.
    """

    def __init__(
        self,
        config: SpeechLLMConfig,
        *,
        llm: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        encoders: Mapping[str, SpeechEncoder] | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        roles = [spec.role for spec in config.encoders]
        if not roles or len(roles) > 2 or len(set(roles)) != len(roles) or "semantic" not in roles:
            raise ValueError(f"a SpeechLLM needs a semantic encoder and at most one paralinguistic; got {roles}")
        if llm is None:
            llm, tokenizer = load_llm(config.llm, resolve_dtype(config.dtype))
        elif tokenizer is None:
            raise ValueError("pass the tokenizer together with the llm")
        llm.requires_grad_(False)
        llm.eval()
        self.config = config
        self.llm = llm
        self.tokenizer = tokenizer
        self.roles: tuple[EncoderRole, ...] = tuple(r for r in ROLES if r in roles)
        built = dict(encoders or {})
        for spec in config.encoders:
            if spec.role in built:
                spec.options = built[spec.role].config()  # a passed-in encoder is saved as it was built
            else:
                # Options stay as given: an alias such as "whisper-tiny.en-ct2" resolves on every machine,
                # where the path it resolved to here would not.
                built[spec.role] = build_encoder(spec.kind, **spec.options)
        self.encoders = nn.ModuleDict({role: built[role] for role in self.roles})
        self.encoders.requires_grad_(False)
        width = llm.get_input_embeddings().embedding_dim
        self.projectors = nn.ModuleDict(
            {
                role: Projector(self.encoders[role].dim, width, config.projector_stack, config.projector_hidden,
                                compress=config.projector_compress and role == "semantic")
                for role in self.roles
            }
        )
        self.chat_mode = get_mode(config.chat_mode or ("sift_sp" if len(self.roles) == 2 else "sift_s"))
        if config.chat_template:
            tokenizer.chat_template = CHAT_TEMPLATES.get(config.chat_template, config.chat_template)
        self.renderer = PromptRenderer(tokenizer)
        # what fills a compressed audio span after its kept positions (see Projector.compress)
        self._newline_id = tokenizer("\n", add_special_tokens=False).input_ids[-1]
        # Teacher-forced passes start after the rows' shared prefix, whose states are computed once. Off when
        # the LLM is sharded: each process would compute a new prefix at its own time, out of lockstep.
        self.reuse_prefix = True
        self.prefix_states = PrefixStates(llm)
        self.attention_span = _attention_span(llm.config)
        if verbose:
            print(self.describe(), file=sys.stderr)

    # ----------------------------------------------------------------------------------------- basics

    def describe(self) -> str:
        """One paragraph on what trains and what is frozen."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen_llm = sum(p.numel() for p in self.llm.parameters())
        shapes = ", ".join(
            f"{role}: {p.linear1.in_features} -> {p.linear1.out_features} -> {p.linear2.out_features}"
            for role, p in self.projectors.items()
        )
        encoders = ", ".join(f"{role} {enc.kind}" for role, enc in self.encoders.items())
        return (
            f"SpeechLLM: {trainable:,} trainable parameters, projectors only ({shapes}); "
            f"frozen: LLM {type(self.llm).__name__} {frozen_llm:,}, encoders {encoders}; generation: "
            f"repetition_penalty {default_repetition_penalty(self.llm)} (the LLM's generation config)"
        )

    def train(self, mode: bool = True) -> SpeechLLM:
        # Only the projectors ever leave eval mode: the frozen parts must see what they saw in generation.
        super().train(mode)
        self.llm.eval()
        self.encoders.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.projectors.parameters()).device

    def audio_positions(self, num_samples: int) -> dict[EncoderRole, int]:
        """LLM positions each encoder's projected frames take for a waveform of ``num_samples``."""
        return {
            role: self.projectors[role].num_outputs(self.encoders[role].num_frames(num_samples))
            for role in self.roles
        }

    # ----------------------------------------------------------------------------------------- prompts

    def user_turn(self, text: str | None = None, *, audio_indices: Sequence[int] = (0,)) -> Message:
        """A user message at inference: this model's slots for each of its audios (conversation-wide
        indices, in order), laid out as in training, then the text."""
        parts = [part for index in audio_indices for part in heard_parts(self.roles, audio_index=index)]
        return user_message(parts, text)

    def conversation(self, text: str | None = None, *, audio: bool = True, system: str | None = _DEFAULT) -> list[Message]:
        """The messages for one question: system (the chat mode's by default), then the user turn."""
        system_text = self.chat_mode.system_message if system == _DEFAULT else system
        head = [Message("system", (system_text,))] if system_text else []
        return [*head, self.user_turn(text, audio_indices=(0,) if audio else ())]

    def render(
        self,
        messages: Sequence[Message],
        audio_samples: Sequence[int],
        answer: str | None = None,
        finished: bool = True,
    ) -> RenderedChat:
        """Render a conversation whose i-th audio has ``audio_samples[i]`` samples (see PromptRenderer)."""
        lengths = {
            (index, role): count
            for index, samples in enumerate(audio_samples)
            for role, count in self.audio_positions(samples).items()
        }
        return self.renderer.render(messages, audio_lengths=lengths, answer=answer, finished=finished)

    # ----------------------------------------------------------------------------------------- tensors

    def encode(self, waves: Sequence[np.ndarray]) -> dict[EncoderRole, tuple[torch.Tensor, torch.Tensor]]:
        """Run every frozen encoder: ``{role: (frames [n, t, d], lengths [n])}``."""
        return {role: self.encoders[role](waves) for role in self.roles}

    def project(
        self, frames: Mapping[EncoderRole, tuple[torch.Tensor, torch.Tensor]]
    ) -> dict[EncoderRole, list[torch.Tensor]]:
        """Project encoder frames: ``{role: [positions_i, H] per audio}``."""
        out = {}
        for role, (x, lengths) in frames.items():
            projector = self.projectors[role]
            projected, counts = projector(x.to(self.device), lengths)  # [n, t/k, H]
            if projector.blank is not None:
                vocabulary = self.llm.get_input_embeddings().weight  # [V, H]
                projected = projector.compress(projected, counts, vocabulary, vocabulary[self._newline_id])
            out[role] = [projected[i, : int(c)] for i, c in enumerate(counts)]
        return out

    def embed(
        self,
        chats: Sequence[RenderedChat],
        audio: Sequence[Mapping[tuple[int, str], torch.Tensor]],
        padding_side: Literal["left", "right"] = "right",
    ) -> TokenBatch:
        """Token embeddings with projected audio scattered into each chat's audio positions.

        Args:
            chats: rendered conversations.
            audio: per chat, the projected frames ``[positions, H]`` of each ``(audio_index, role)``.
            padding_side: ``left`` for generation, ``right`` for training.

        Returns:
            The batch, padded to its longest chat.
        """
        longest = max(len(c.input_ids) for c in chats)
        b = len(chats)
        ids = torch.full((b, longest), self.renderer.placeholder_id, dtype=torch.long)
        mask = torch.zeros(b, longest, dtype=torch.long)
        labels = torch.full((b, longest), IGNORE_INDEX, dtype=torch.long)
        audio_mask = torch.zeros(b, longest, dtype=torch.bool)
        pieces: list[torch.Tensor] = []
        text_ids: list[list[int]] = []
        for row, (chat, chat_audio) in enumerate(zip(chats, audio, strict=True)):
            n = len(chat.input_ids)
            start = longest - n if padding_side == "left" else 0
            ids[row, start : start + n] = torch.tensor(chat.input_ids)
            mask[row, start : start + n] = 1
            if chat.labels is not None:
                labels[row, start : start + n] = torch.tensor(chat.labels)
            for span in chat.audio_spans:
                frames = chat_audio[(span.audio_index, span.encoder)]
                if frames.shape[0] != span.length:
                    raise ValueError(
                        f"chat {row}: {span.encoder} audio {span.audio_index} has {frames.shape[0]} projected "
                        f"frames but the prompt holds {span.length} positions for it"
                    )
                audio_mask[row, start + span.start : start + span.start + span.length] = True
                pieces.append(frames)
            text_ids.append([t for t, heard in zip(chat.input_ids, audio_mask[row, start:].tolist()) if not heard])
        device = self.device
        embeds = self.llm.get_input_embeddings()(ids.to(device))  # [b, L, H]
        if pieces:
            values = torch.cat(pieces).to(embeds.dtype)  # [audio positions, H], in row-major order
            embeds = embeds.masked_scatter(audio_mask.to(device)[..., None], values)
        has_labels = any(c.labels is not None for c in chats)
        prefix = shared_prefix(chats) if padding_side == "right" else ()
        return TokenBatch(embeds, mask.to(device), labels.to(device) if has_labels else None, prefix, text_ids)

    def forward(self, batch: TokenBatch, *, return_logits: bool = False) -> ForwardOutput:
        """Teacher-forced pass over a right-padded batch with labels.

        The loss is the LLM's own ``labels=`` loss (its logits as it computes them for generation), and only
        the work it needs is done, with the same result up to float rounding:

        - the pass starts after the prefix all rows share (the chat template's opening), whose keys and
          values are computed once (:class:`azeros.kv_cache.PrefixStates`);
        - the rows are packed, several to a row, without padding (:meth:`_packed`): after the shared
          prefix, rows differ in length far more than they did, and padding would be a third of the work
          (these two where the longest row fits within every layer's attention window);
        - the LM head runs only where the next token is supervised (:meth:`_own_logits`).

        Args:
            batch: embeddings, mask and labels (see :meth:`prepare`).
            return_logits: also return the logits of every position (``[b, L, V]``), e.g. for per-row
                scores (the whole padded batch is then computed, as with flash-attention kernels).

        Returns:
            The token-mean cross-entropy over supervised next tokens, how many of them the argmax gets
            right, and how many there are.
        """
        if batch.labels is None:
            raise ValueError("forward needs labels; use generate() for answers")
        # The packed pass's mask is the plain causal one: a layer with a window (Gemma2/3, Mistral, Phi-3, Qwen2
        # with use_sliding_window) would look past it, and its cache layer keeps only the window of the shared
        # prefix, so rows longer than the window get the padded pass, masked by the LLM itself. So do
        # flash-attention kernels, which take no custom mask.
        padded = return_logits or batch.inputs_embeds.shape[1] > self.attention_span
        if padded or self.llm.config._attn_implementation not in ("sdpa", "eager"):
            inputs = {"inputs_embeds": batch.inputs_embeds, "attention_mask": batch.attention_mask, "use_cache": False}
            targets = _next_tokens(batch.labels)  # [b, L]
        else:
            inputs, targets = self._packed(batch)  # targets [r, C]
        supervised = targets != IGNORE_INDEX
        keep = torch.ones_like(supervised) if return_logits else supervised
        logits = self._own_logits(inputs, keep)  # [kept, V]
        chosen = logits[supervised[keep]].float()  # [n, V]
        wanted = targets[supervised]  # [n]
        loss = nn.functional.cross_entropy(chosen, wanted)
        return ForwardOutput(
            loss=loss,
            correct=int((chosen.argmax(-1) == wanted).sum()),
            tokens=int(wanted.numel()),
            logits=logits.view(*keep.shape, -1) if return_logits else None,
        )

    def _own_logits(self, inputs: Mapping[str, Any], keep: torch.Tensor) -> torch.Tensor:
        """The LLM's own logits at the positions ``keep`` (``[b, L]``) of its pass over ``inputs``: ``[kept, V]``.

        The LLM's forward computes them, so what it does after its head (Gemma2's soft-capping, Cohere's and
        Granite's scaling) is done here as in generation. A hook on its decoder hands the head the kept
        positions only, as one row ``[1, kept, H]``: prompt, audio and padding positions need no logits, and a
        vocabulary-wide projection of them is a large share of a small LLM's cost.
        """

        def kept(module: nn.Module, args: Any, output: Any) -> Any:
            output.last_hidden_state = output.last_hidden_state[keep][None]
            return output

        hook = self.llm.get_decoder().register_forward_hook(kept)
        try:
            return self.llm(**inputs).logits[0]
        finally:
            hook.remove()

    def _packed(self, batch: TokenBatch) -> tuple[dict[str, Any], torch.Tensor]:
        """The LLM's inputs for a pass over the batch after its shared prefix, rows packed end to end.

        Each row keeps its positions from the end of the shared prefix up to the one that predicts its last
        supervised token (the positions after it predict nothing). Rows are placed first-fit, longest first,
        into packed rows (see :func:`_pack`); each attends to the prefix and, causally, to itself only, at
        the positions it has unpacked.

        Returns:
            The keyword arguments of the LLM's forward (embeddings ``[r, C, H]``, mask, positions, prefix
            cache) and the token each position predicts ``[r, C]`` (``IGNORE_INDEX`` where unsupervised), for
            the ``r <= b`` packed rows.
        """
        skip = len(batch.shared_prefix) if self.reuse_prefix else 0
        embeds = batch.inputs_embeds[:, skip:]  # [b, L', H]
        targets = _next_tokens(batch.labels)[:, skip:]  # [b, L']
        b, width = targets.shape
        supervised = targets != IGNORE_INDEX
        last = (supervised * torch.arange(1, width + 1, device=targets.device)).amax(1)  # [b]: 1 + last predicting position
        real = batch.attention_mask[:, skip:].sum(1)  # right padding: the first real[i] positions are tokens
        lengths = torch.where(supervised.any(1), last, real).tolist()
        capacity, rows = _pack(lengths)
        device = embeds.device
        index = torch.zeros(len(rows), capacity, dtype=torch.long)  # into the flattened [b * L'] positions
        segment = torch.full((len(rows), capacity), -1, dtype=torch.long)
        positions = torch.zeros(len(rows), capacity, dtype=torch.long)
        for r, members in enumerate(rows):
            filled = 0
            for i in members:
                n = lengths[i]
                index[r, filled : filled + n] = torch.arange(i * width, i * width + n)
                segment[r, filled : filled + n] = i
                positions[r, filled : filled + n] = torch.arange(skip, skip + n)
                filled += n
        valid = segment >= 0  # [r, C]
        same = segment[:, :, None] == segment[:, None, :]  # [r, C, C]
        causal = torch.ones(capacity, capacity, dtype=torch.bool).tril()
        # Padding positions attend to themselves, never to others; nothing attends to them.
        attend = (same & causal & valid[:, None, :]) | torch.eye(capacity, dtype=torch.bool)
        prefix = torch.ones(len(rows), capacity, skip, dtype=torch.bool)
        mask = torch.cat([prefix, attend], dim=2)[:, None].to(device)  # [r, 1, C, skip + C]: True attends
        if self.llm.config._attn_implementation == "eager":  # eager attention adds its mask to the scores
            mask = torch.zeros(mask.shape, dtype=embeds.dtype, device=device).masked_fill(~mask, torch.finfo(embeds.dtype).min)
        flat_index = index.to(device)
        packed = embeds.reshape(b * width, -1)[flat_index]  # [r, C, H]
        packed_targets = targets.reshape(-1)[flat_index].masked_fill(~valid.to(device), IGNORE_INDEX)
        inputs = {"inputs_embeds": packed, "attention_mask": mask, "position_ids": positions.to(device),
                  "use_cache": bool(skip)}
        if skip:
            inputs[cache_keyword(self.llm)] = self.prefix_states.cache_for(batch.shared_prefix, len(rows), packed)
        return inputs, packed_targets

    def prepare(
        self,
        conversations: Sequence[Sequence[Message]],
        audios: Sequence[Sequence[np.ndarray]],
        answers: Sequence[str | None] | None = None,
        finished: Sequence[bool] | None = None,
        padding_side: Literal["left", "right"] = "right",
    ) -> TokenBatch:
        """Render, encode, project and embed a batch of conversations with their audio.

        Args:
            conversations: per item, its messages.
            audios: per item, its 16 kHz waveforms in slot order (``audio_index``).
            answers: per item, the answer to supervise (training) or ``None``.
            finished: per item, whether its answer ended by itself.
            padding_side: ``left`` for generation, ``right`` for training.
        """
        answers = answers or [None] * len(conversations)
        finished = finished or [True] * len(conversations)
        chats = [
            self.render(msgs, [len(w) for w in waves], answer, done)
            for msgs, waves, answer, done in zip(conversations, audios, answers, finished, strict=True)
        ]
        flat = [w for waves in audios for w in waves]
        projected = self.project(self.encode(flat)) if flat else {}
        per_chat: list[dict[tuple[int, str], torch.Tensor]] = []
        cursor = 0
        for waves in audios:
            per_chat.append(
                {(i, role): projected[role][cursor + i] for i in range(len(waves)) for role in self.roles}
            )
            cursor += len(waves)
        return self.embed(chats, per_chat, padding_side)

    # ----------------------------------------------------------------------------------------- answers

    @torch.no_grad()
    def generate(
        self,
        audios: Sequence[AudioSource | None],
        texts: Sequence[str | None] | None = None,
        *,
        system: str | None = _DEFAULT,
        max_new_tokens: int = 256,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        repetition_penalty: float | None = None,
        seed: int | None = None,
    ) -> list[Answer]:
        """Answer a batch of spoken (and/or typed) questions; greedy unless ``do_sample``.

        Greedy answers are the same as answering each item alone: audio is encoded and projected per
        utterance, the batch is left-padded and masked.

        Args:
            audios: per item, a path, encoded bytes, ``(array, rate)`` or ``None`` for text only.
            texts: per item, an optional instruction or question written after the audio.
            system: the system message; by default the chat mode's (none for SIFT modes).
            max_new_tokens: answer length limit.
            do_sample: sample instead of greedy.
            temperature: sampling temperature.
            top_p: nucleus sampling mass.
            repetition_penalty: see :meth:`decode`.
            seed: seeds sampling.

        Returns:
            One :class:`Answer` per item, in input order.
        """
        texts = list(texts) if texts is not None else [None] * len(audios)
        if len(texts) != len(audios):
            raise ValueError(f"{len(audios)} audios but {len(texts)} texts")
        waves = [[] if a is None else [load_audio(a)] for a in audios]
        conversations = [
            self.conversation(text, audio=a is not None, system=system) for a, text in zip(audios, texts)
        ]
        batch = self.prepare(conversations, waves, padding_side="left")
        return self.decode(batch, max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                           top_p=top_p, repetition_penalty=repetition_penalty, seed=seed)

    def decode(
        self,
        batch: TokenBatch,
        *,
        max_new_tokens: int = 256,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        repetition_penalty: float | None = None,
        seed: int | None = None,
        cache: Any = None,
        streamer: Any = None,
        stop: Callable[[], Sequence[bool]] | None = None,
    ) -> list[Answer]:
        """Generate answers for a left-padded batch.

        Only the repetition penalty defaults to the LLM's own generation config (as in target generation);
        every other setting is what is asked here.

        Args:
            batch: the embedded prompts.
            max_new_tokens: answer length limit.
            do_sample: sample instead of greedy.
            temperature: sampling temperature.
            top_p: nucleus sampling mass.
            repetition_penalty: rescales the logits of tokens already seen, the prompt's text and the answer
                (transformers' and vLLM's meaning, see :mod:`azeros.repetition`); ``None`` takes the LLM's
                own generation config.
            seed: seeds sampling.
            cache: a transformers KV cache holding a prefix of the (single-row) batch; extended in place.
            streamer: a transformers streamer that receives the tokens as they come.
            stop: asked after every new token which rows to stop (e.g. nobody waits for them any more);
                a stopped row's answer ends there, and generation ends once every row has ended.

        Returns:
            One answer per row.
        """
        stop_ids = self.renderer.stop_ids
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=top_p if do_sample else None,
            top_k=None,
            repetition_penalty=1.0,  # applied by RepetitionPenalty below, prompt included
            eos_token_id=stop_ids,
            pad_token_id=stop_ids[0],
        )
        if seed is not None:
            torch.manual_seed(seed)
        extra = {cache_keyword(self.llm): cache if cache is not None else GrowingCache()}
        if repetition_penalty is None:
            repetition_penalty = default_repetition_penalty(self.llm)
        penalty = RepetitionPenalty(batch.text_ids, repetition_penalty)  # generate alone would miss the prompt
        with torch.no_grad():
            sequences = self.llm.generate(
                inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
                generation_config=config, streamer=streamer, logits_processor=[penalty],
                stopping_criteria=StoppingCriteriaList([_RowsStopped(stop)] if stop is not None else []), **extra,
            )  # [b, new tokens]: with inputs_embeds only, nothing of the prompt is returned
        answers = []
        for row in sequences.tolist():
            end = next((i for i, t in enumerate(row) if t in stop_ids), None)
            ids = row if end is None else row[:end]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            answers.append(Answer(text, "length" if end is None else "stop", ids))
        return answers

    def chat(
        self,
        audio: AudioSource | Sequence[AudioSource] | None = None,
        text: str | None = None,
        history: Any = None,
        system: str | None = _DEFAULT,
        **generation: Any,
    ) -> Answer:
        """Answer one turn of a conversation; greedy unless ``do_sample=True``.

        Args:
            audio: a path, encoded bytes, ``(array, rate)``, a list of those, or ``None``.
            text: an instruction or question written after the audio.
            history: a :class:`azeros.models.chat.ChatSession` to continue (the turn and its answer are
                added to it and its cached prefix is reused); ``None`` for a one-off question.
            system: the system message of a new conversation; by default the chat mode's.
            **generation: ``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``, ``seed``,
                and ``on_text`` (called with each new piece of the answer).
        """
        from azeros.models.chat import ChatSession  # chat.py builds on this module

        session = history if history is not None else ChatSession(self, system=system)
        return session.ask(audio, text, **generation)

    def stream_chat(
        self,
        audio: AudioSource | Sequence[AudioSource] | None = None,
        text: str | None = None,
        history: Any = None,
        system: str | None = _DEFAULT,
        **generation: Any,
    ) -> Iterator[str]:
        """Like :meth:`chat`, but yields the answer piece by piece as it is generated."""
        pieces: queue.Queue[str | BaseException | None] = queue.Queue()

        def run() -> None:
            try:
                self.chat(audio, text, history, system, on_text=pieces.put, **generation)
                pieces.put(None)
            except BaseException as error:  # handed to the consumer, which re-raises it
                pieces.put(error)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        while (piece := pieces.get()) is not None:
            if isinstance(piece, BaseException):
                raise piece
            yield piece
        worker.join()

    # ----------------------------------------------------------------------------------------- files

    def projector_state(self) -> dict[str, torch.Tensor]:
        """Projector weights under the reference's names (``speech_encoder_projector.linear1.weight``...).

        This is what every export and checkpoint writes, so it refuses weights that a diverged run left
        non-finite: a NaN model must not be saved as if it were a model.

        Raises:
            ValueError: naming the weights that hold NaN or infinite values.
        """
        state = {
            f"{PROJECTOR_KEYS[role]}.{name}": tensor.detach().contiguous().cpu()
            for role, projector in self.projectors.items()
            for name, tensor in projector.state_dict().items()
        }
        bad = [name for name, tensor in state.items() if not torch.isfinite(tensor).all()]
        if bad:
            raise ValueError(f"refusing to save projector weights with NaN or infinite values: {', '.join(bad)}")
        return state

    def load_projectors(self, path: str | Path, roles: Sequence[str] | None = None) -> list[str]:
        """Load projector weights from a file or model folder; every asked projector must load completely.

        Args:
            path: a weights file, or a folder holding one of ``model.safetensors``, ``pretrained.safetensors``,
                ``pretrained.pt``, ``model.pt`` (reference checkpoints load too).
            roles: which projectors to load (default: all of this model's).

        Returns:
            The weight names loaded.

        Raises:
            FileNotFoundError: no weights file.
            ValueError: a projector is missing or partial, or a shape differs; nothing is loaded then.
        """
        file = _weights_file(Path(path))
        state = _read_weights(file)
        loaded: dict[str, dict[str, torch.Tensor]] = {}
        for role in roles or self.roles:
            prefix = f"{PROJECTOR_KEYS[role]}."
            own = self.projectors[role].state_dict()
            found = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            missing = sorted(set(own) - set(found))
            if missing:
                raise ValueError(f"{file}: the {role} projector is missing {', '.join(prefix + m for m in missing)}")
            for name, tensor in own.items():
                if found[name].shape != tensor.shape:
                    raise ValueError(
                        f"{file}: {prefix}{name} has shape {tuple(found[name].shape)}, "
                        f"this model needs {tuple(tensor.shape)}"
                    )
            loaded[role] = {k: found[k] for k in own}
        for role, tensors in loaded.items():  # all checked first: a failure leaves the model untouched
            self.projectors[role].load_state_dict(tensors)
        return [f"{PROJECTOR_KEYS[role]}.{name}" for role, tensors in loaded.items() for name in tensors]

    def save_pretrained(self, folder: str | Path, *, include_llm: bool = False) -> Path:
        """Save ``config.json`` and the projectors (``model.safetensors``).

        Args:
            folder: where to write.
            include_llm: also copy the frozen LLM into ``folder/llm`` (otherwise the config points to it).
        """
        state = self.projector_state()  # refuses non-finite weights before anything is written
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = self.config.to_dict()
        if include_llm:
            self.llm.save_pretrained(folder / "llm")
            self.tokenizer.save_pretrained(folder / "llm")
            config["llm"] = "llm"
        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return folder

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, dtype: str | None = None, device: str | torch.device = "cpu", verbose: bool = True
    ) -> SpeechLLM:
        """Load a model folder written by :meth:`save_pretrained`.

        Args:
            folder: the model folder.
            dtype: override the saved LLM dtype.
            device: where to put the model.
            verbose: print the parameter counts.
        """
        folder = Path(folder)
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{folder}: no config.json; not an azeros model folder")
        config = SpeechLLMConfig.from_dict(json.loads(config_file.read_text()))
        if dtype is not None:
            config.dtype = dtype
        if (folder / config.llm).is_dir():
            config.llm = str(folder / config.llm)
        llm, tokenizer = load_llm(config.llm, resolve_dtype(config.dtype, device))
        model = cls(config, llm=llm, tokenizer=tokenizer, verbose=verbose)
        model.load_projectors(folder)
        if (folder / "llm").is_dir():
            model.config.llm = "llm"
        return model.to(device)


class _RowsStopped(StoppingCriteria):
    """Ends the rows a caller asks to stop."""

    def __init__(self, stop: Callable[[], Sequence[bool]]) -> None:
        self.stop = stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.tensor(list(self.stop()), dtype=torch.bool, device=input_ids.device)  # [b]


def _weights_file(path: Path) -> Path:
    if path.is_file():
        return path
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path}: no projector weights (looked for {', '.join(WEIGHT_FILES)})")


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    if file.suffix == ".safetensors":
        return load_file(file)
    state = torch.load(file, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    return state.get("state_dict", state) if isinstance(state, dict) else state


def shared_prefix(chats: Sequence[RenderedChat]) -> tuple[int, ...]:
    """The longest token prefix that every chat opens with, holding no audio and predicting no supervised token."""
    heads = []
    for chat in chats:
        end = len(chat.input_ids) - 1  # a pass needs at least one position of its own
        if chat.audio_spans:
            end = min(end, min(span.start for span in chat.audio_spans))
        if chat.labels is not None:
            supervised = next((i for i, label in enumerate(chat.labels) if label != IGNORE_INDEX), end + 1)
            end = min(end, supervised - 1)  # position i predicts token i + 1
        heads.append(list(chat.input_ids[: max(end, 0)]))
    return tuple(os.path.commonprefix(heads))  # element-wise on lists


def _attention_span(config: Any) -> float:
    """How many positions (the query's own included) every layer of an LLM attends to, as transformers' own
    cache for it says: the shortest sliding window or chunk among its layers; infinite when all attend to every
    earlier position; 0 when a layer is no plain attention (e.g. a recurrent state)."""
    spans = [
        math.inf if type(layer) is DynamicLayer
        else layer.sliding_window if type(layer) is DynamicSlidingWindowLayer
        else 0
        for layer in DynamicCache(config=config).layers
    ]
    return min(spans, default=math.inf)


def _next_tokens(labels: torch.Tensor) -> torch.Tensor:
    """``[b, L]`` labels -> ``[b, L]`` the token each position predicts (the next label; none for the last)."""
    return nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def _pack(lengths: Sequence[int]) -> tuple[int, list[list[int]]]:
    """Packed-row length and rows: of 1 to 2 times the longest sequence, the length needing fewest positions.

    Rows as long as the longest sequence leave every sequence longer than half of it alone in its row; a
    little more room pairs them. Ties go to the shorter rows, since attention grows with row length.
    """
    longest = max(lengths)
    best: tuple[int, list[list[int]]] | None = None
    for capacity in sorted({int(longest * factor) for factor in (1, 1.25, 1.5, 1.75, 2)}):
        rows = _first_fit(lengths, capacity)
        if best is None or len(rows) * capacity < len(best[1]) * best[0]:
            best = (capacity, rows)
    return best


def _first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bin packing, first fit in decreasing length: the rows placed in each packed row of ``capacity``."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fits = next((r for r, free in enumerate(room) if lengths[i] <= free), None)
        if fits is None:
            rows.append([])
            room.append(capacity)
            fits = len(rows) - 1
        rows[fits].append(i)
        room[fits] -= lengths[i]
    return rows

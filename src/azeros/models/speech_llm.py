"""SpeechLLM: a frozen causal LM, frozen speech encoders and one trainable projector per encoder.

Audio reaches the LLM the way DESIGN's prompt policy says: a conversation rendered with the LLM's own chat
template (:mod:`azeros.models.batch`) holds as many positions for each audio slot as its projector outputs,
and :meth:`SpeechLLM.embed` scatters the projected frames into those positions of the token embeddings
(after a count check). Only the projectors have ``requires_grad``. This module is the model alone: how
batches are built is :mod:`azeros.models.batch`, how the loss is made cheap :mod:`azeros.models.packing`,
saving and loading :mod:`azeros.models.saving`, and generation :mod:`azeros.inference`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from azeros.errors import ConfigError
from azeros.llm import attention_span, default_repetition_penalty, load_llm
from azeros.models.encoders import SpeechEncoder, build_encoder
from azeros.models.packing import PrefixStates, next_tokens, packed_inputs, shared_prefix
from azeros.models.projector import ALIGN_SCALE, Projector
from azeros.text import IGNORE_INDEX, PromptRenderer, RenderedChat, get_mode

__all__ = ["EmbeddedBatch", "EncoderSpec", "ForwardOutput", "SpeechLLM", "SpeechLLMConfig"]

logger = logging.getLogger(__name__)

EncoderRole = Literal["semantic", "paralinguistic"]
ROLES: tuple[EncoderRole, ...] = ("semantic", "paralinguistic")


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
        projector_context_layers: Transformer layers inside the semantic projector, which hears the words
            (:class:`azeros.models.projector.Projector`; 0: the paper's two linear layers).
        projector_compress: the semantic projector's outputs are CTC-compressed before the LLM reads them
            (:class:`azeros.models.projector.Projector`; needs a projector aligned by CTC first).
        compress_read_scale: how sharply a compressed position reads the token heard: the scale of the
            cosines in its posterior over the vocabulary (20, the alignment's: a blend, differentiable;
            1000: the token heard, no gradient to speak of).
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
    projector_context_layers: int = 0
    projector_compress: bool = False
    compress_read_scale: float = ALIGN_SCALE
    chat_mode: str | None = None
    dtype: str = "auto"
    chat_template: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": "azeros", **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "model config") -> SpeechLLMConfig:
        """The config a saved ``config.json`` holds; keys this version does not know are logged and ignored.

        Args:
            data: the parsed ``config.json``.
            source: how to name it in messages (the file).

        Raises:
            ConfigError: the config, or one of its encoders, is not a mapping.
        """
        known = _known_keys(data, cls, source, _KNOWN_NON_SETTINGS)
        known["encoders"] = [
            EncoderSpec(**_known_keys(encoder, EncoderSpec, f"{source}: encoder {index}"))
            for index, encoder in enumerate(known.get("encoders", []))
        ]
        return cls(**known)


# Keys a saved config may hold that are not settings: the folder's type tag, and a key earlier versions wrote.
_KNOWN_NON_SETTINGS = frozenset({"model_type", "question_mode"})


def _known_keys(data: Any, kind: type, source: str, expected: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``kind``; a warning lists the others, since
    a key this version does not read (a typo, a newer version's setting) would otherwise be lost unseen."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(kind.__dataclass_fields__) - expected)
    if unknown:
        logger.warning("%s: ignoring unknown keys: %s", source, ", ".join(unknown))
    return {key: value for key, value in data.items() if key in kind.__dataclass_fields__}


@dataclass
class ForwardOutput:
    """A teacher-forced pass: loss and accuracy over the supervised answer tokens."""

    loss: torch.Tensor  # token-mean cross-entropy, a scalar
    correct: int  # supervised next tokens the argmax predicts
    tokens: int  # supervised next tokens
    logits: torch.Tensor | None = None  # [b, L, V], only when asked for


@dataclass
class EmbeddedBatch:
    """LLM inputs of a batch: embeddings with audio in place, mask and (for training) labels."""

    inputs_embeds: torch.Tensor  # [b, L, H]
    attention_mask: torch.Tensor  # [b, L]
    labels: torch.Tensor | None  # [b, L], IGNORE_INDEX where unsupervised
    shared_prefix: tuple[int, ...] = ()  # token ids every row opens with, before any audio or supervised token
    text_ids: list[list[int]] = field(default_factory=list)  # per row, the prompt's text tokens (no audio)


class SpeechLLM(nn.Module):
    """A frozen LLM that hears through frozen encoders and trainable projectors.

    Construction logs how many parameters train (``logging``, level INFO).

    Args:
        config: the model description (not changed: the model keeps its own copy).
        llm: an already loaded LLM (otherwise loaded from ``config.llm``).
        tokenizer: its tokenizer (required with ``llm``).
        encoders: already built encoders by role (otherwise built from ``config.encoders``).
    """

    def __init__(
        self,
        config: SpeechLLMConfig,
        *,
        llm: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        encoders: Mapping[str, SpeechEncoder] | None = None,
    ) -> None:
        super().__init__()
        roles = [spec.role for spec in config.encoders]
        if not roles or len(roles) > 2 or len(set(roles)) != len(roles) or "semantic" not in roles:
            raise ValueError(f"a SpeechLLM needs a semantic encoder and at most one paralinguistic; got {roles}")
        if llm is None:
            llm, tokenizer = load_llm(config.llm, config.dtype)
        elif tokenizer is None:
            raise ValueError("pass the tokenizer together with the llm")
        llm.requires_grad_(False)
        llm.eval()
        built = dict(encoders or {})
        # A passed-in encoder is saved as it was built. Other options stay as given: an alias such as
        # "whisper-tiny.en-ct2" resolves on every machine, where the path it resolved to here would not.
        self.config = replace(config, encoders=[
            replace(spec, options=built[spec.role].config()) if spec.role in built else spec
            for spec in config.encoders
        ])
        for spec in self.config.encoders:
            if spec.role not in built:
                built[spec.role] = build_encoder(spec.kind, **spec.options)
        self.llm = llm
        self.tokenizer = tokenizer
        self.roles: tuple[EncoderRole, ...] = tuple(r for r in ROLES if r in roles)
        self.encoders = nn.ModuleDict({role: built[role] for role in self.roles})
        self.encoders.requires_grad_(False)
        width = llm.get_input_embeddings().embedding_dim
        self.projectors = nn.ModuleDict(
            {
                role: Projector(self.encoders[role].dim, width, config.projector_stack, config.projector_hidden,
                                compress=config.projector_compress and role == "semantic",
                                read_scale=config.compress_read_scale,
                                context_layers=config.projector_context_layers if role == "semantic" else 0)
                for role in self.roles
            }
        )
        self.chat_mode = get_mode(config.chat_mode or ("sift_sp" if len(self.roles) == 2 else "sift_s"))
        # the tokenizer is left as it is (a saved model folder writes it back unchanged): the renderer, which
        # every prompt goes through, holds the template
        self.renderer = PromptRenderer(tokenizer, chat_template=config.chat_template)
        # what fills a compressed audio span after its kept positions (see Projector.compress)
        self._newline_id = tokenizer("\n", add_special_tokens=False).input_ids[-1]
        self.prefix_states = PrefixStates(llm)  # teacher-forced passes start after the rows' shared prefix
        self.attention_span = attention_span(llm.config)
        logger.info("%s", self.describe())

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
    ) -> EmbeddedBatch:
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
        return EmbeddedBatch(embeds, mask.to(device), labels.to(device) if has_labels else None, prefix, text_ids)

    def forward(self, batch: EmbeddedBatch, *, reuse_prefix: bool = True, return_logits: bool = False) -> ForwardOutput:
        """Teacher-forced pass over a right-padded batch with labels.

        The loss is the LLM's own ``labels=`` loss (its logits as it computes them for generation), and only
        the work it needs is done, with the same result up to float rounding:

        - the pass starts after the prefix all rows share (the chat template's opening), whose keys and
          values are computed once (:class:`azeros.models.packing.PrefixStates`);
        - the rows are packed, several to a row, without padding (:func:`azeros.models.packing.packed_inputs`):
          after the shared prefix, rows differ in length far more than they did, and padding would be a third
          of the work (these two where the longest row fits within every layer's attention window);
        - the LM head runs only where the next token is supervised (:meth:`_own_logits`).

        Args:
            batch: embeddings, mask and labels (see :func:`azeros.models.build_batch`).
            reuse_prefix: start after the shared prefix, whose states are kept between passes. Off when the
                LLM is sharded: each process would compute a new prefix at its own time, out of lockstep.
            return_logits: also return the logits of every position (``[b, L, V]``), e.g. for per-row
                scores (the whole padded batch is then computed, as with flash-attention kernels).

        Returns:
            The token-mean cross-entropy over supervised next tokens, how many of them the argmax gets
            right, and how many there are.
        """
        if batch.labels is None:
            raise ValueError("forward needs labels; generate answers with azeros.inference")
        # The packed pass's mask is the plain causal one: a layer with a window (Gemma2/3, Mistral, Phi-3, Qwen2
        # with use_sliding_window) would look past it, and its cache layer keeps only the window of the shared
        # prefix, so rows longer than the window get the padded pass, masked by the LLM itself. So do
        # flash-attention kernels, which take no custom mask.
        padded = return_logits or batch.inputs_embeds.shape[1] > self.attention_span
        if padded or self.llm.config._attn_implementation not in ("sdpa", "eager"):
            inputs = {"inputs_embeds": batch.inputs_embeds, "attention_mask": batch.attention_mask, "use_cache": False}
            targets = next_tokens(batch.labels)  # [b, L]
        else:
            inputs, targets = packed_inputs(  # targets [r, C]
                self.llm, batch.inputs_embeds, batch.attention_mask, batch.labels, batch.shared_prefix,
                self.prefix_states if reuse_prefix else None,
            )
        supervised = targets != IGNORE_INDEX
        keep = torch.ones_like(supervised) if return_logits else supervised
        logits = self._own_logits(inputs, keep)  # [kept, V]
        # Without return_logits every kept position is supervised: indexing would copy [n, V] (and scatter its
        # gradient back), as much as the cross-entropy itself costs on a CPU.
        chosen = (logits[supervised[keep]] if return_logits else logits).float()  # [n, V]
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

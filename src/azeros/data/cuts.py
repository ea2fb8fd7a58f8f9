"""What a cut carries, as typed views over a Lhotse cut.

A Lhotse cut stays the storage format (docs/design.md, "Data: one format"); these dataclasses say what azeros
reads from it and writes into it, so no other module digs through ``supervisions[0].custom`` by hand.

* :class:`Utterance`: the text side of a cut, which is all target generation needs: the transcript,
  the language and the raw speaker labels.
* :func:`cut_audio`: the audio side, loaded and validated by the one rule of :func:`azeros.audio.load_audio`
  (generation, the encoder cache, training and inference all read a cut's audio through it).
* :class:`Target`: what generation adds, stored under the first supervision's ``custom``: the response,
  and the exact context it was generated from (mode, system message, instruction, user content), the
  model that wrote it and why it stopped.

Training must show the model exactly the context a target came from; :func:`target_conversation` rebuilds
that conversation from a generated cut.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from lhotse.cut import Cut

from azeros.audio import AudioError, AudioLimits, load_audio
from azeros.text import (
    ASR_PROMPTS,
    META_KEYS,
    SYSTEM_MESSAGE,
    Message,
    get_mode,
    normalize_text,
    speaker_meta,
    target_messages,
)

__all__ = [
    "ANY_DURATION",
    "LABEL_KEYS",
    "REFERENCE_SYSTEM_MESSAGE",
    "TRUNCATION_MARK",
    "Target",
    "Utterance",
    "cut_audio",
    "infer_mode",
    "target_conversation",
    "target_of",
    "with_target",
]

LABEL_KEYS = ("age", "age_group", "gender", "emotion")  # raw speaker labels read from a supervision
TRUNCATION_MARK = "<|truncated|>"  # the reference appends it to answers cut short at the limit
# The reference generated its ssp targets with this exact text (its missing space included); training on
# a reference ssp manifest must show the model the same context.
REFERENCE_SYSTEM_MESSAGE = SYSTEM_MESSAGE.replace("audios. NEVER", "audios.NEVER")
# Audio checks without duration bounds, for readers whose own settings bound a cut's duration.
ANY_DURATION = AudioLimits(min_seconds=0.0, max_seconds=math.inf)


def cut_audio(cut: Cut, limits: AudioLimits = AudioLimits()) -> np.ndarray:
    """A cut's audio as float32 mono 16 kHz, validated as every input is (:func:`azeros.audio.load_audio`).

    Args:
        cut: a cut with a recording.
        limits: duration and silence bounds.

    Returns:
        The waveform ``[samples]``.

    Raises:
        AudioError: naming the cut, when it has no recording, its file is missing or unreadable, or the
            audio is empty, non-finite, silent or outside ``limits``.
    """
    if not cut.has_recording:
        raise AudioError(cut.id, "no recording")
    try:
        samples = cut.load_audio()  # [channels, samples]
    except Exception as error:  # lhotse reports missing or unreadable files in many ways, at length
        raise _load_failure(cut, error) from error
    return load_audio((samples.T, int(cut.sampling_rate)), name=cut.id, limits=limits)


def _load_failure(cut: Cut, error: Exception) -> AudioError:
    """Why lhotse could not load a cut, in one line: a source file's fault as ``load_audio`` words it
    (missing, empty, not audio), else the first line of lhotse's message."""
    for source in cut.recording.sources:
        if source.type == "file":
            try:
                load_audio(source.source, limits=ANY_DURATION)
            except AudioError as file_error:
                return AudioError(cut.id, str(file_error))
    return AudioError(cut.id, f"cannot load audio ({str(error).splitlines()[0]})")


@dataclass(frozen=True)
class Utterance:
    """The text side of one cut: what target generation reads.

    Attributes:
        cut_id: the cut's id (the key for sharding, resuming and the TSIT_s prompt draw).
        text: the raw transcript of the first supervision (``""`` when there is none).
        language: its language code, or ``None`` when the manifest does not say.
        duration: the cut's duration in seconds.
        labels: raw speaker labels (``age``, ``age_group``, ``gender``, ``emotion``) as found, unknown
            ones absent.
    """

    cut_id: str
    text: str
    language: str | None
    duration: float
    labels: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_cut(cls, cut: Cut) -> Utterance:
        """Read the first supervision of ``cut`` (gender may sit on the supervision or in ``custom``)."""
        if not cut.supervisions:
            return cls(cut.id, "", None, float(cut.duration))
        supervision = cut.supervisions[0]
        custom = supervision.custom or {}
        labels = {key: custom[key] for key in LABEL_KEYS if custom.get(key) is not None}
        if supervision.gender is not None:
            labels["gender"] = supervision.gender
        return cls(cut.id, supervision.text or "", supervision.language, float(cut.duration), labels)

    @property
    def transcript(self) -> str:
        """The normalized transcript: the oracle text of the ``s`` modes (non-speech tags removed)."""
        return normalize_text(self.text, remove_tags=True)

    @property
    def meta(self) -> dict[str, str]:
        """The known speaker labels, normalized, in oracle order (see :func:`azeros.text.speaker_meta`)."""
        return speaker_meta(self.labels)


@dataclass(frozen=True)
class Target:
    """A self-generated target and the context it came from.

    Attributes:
        response: the answer, without any end token or truncation mark.
        mode: the generation mode (``sift_s``, ...).
        instruction: the instruction after the oracle (``""`` for SIFT).
        system: the system message shown, or ``None``.
        input_text: the user message exactly as the LLM saw it (oracle text, then the instruction).
        from_model: which model wrote the response (``"transcript"`` for TSIT_s).
        finish_reason: ``stop`` (ended by itself) or ``length`` (cut at the generation limit).
        no_system_turn: the prompt had no system turn at all, not even a chat template's default (the
            reference's own ChatML); training then needs a template that adds none (``chat_template``).
    """

    response: str
    mode: str
    instruction: str
    system: str | None
    input_text: str
    from_model: str
    finish_reason: Literal["stop", "length"]
    no_system_turn: bool = False

    def to_custom(self) -> dict[str, Any]:
        """The fields as stored under the supervision's ``custom``."""
        return asdict(self)


def infer_mode(input_text: str, instruction: str) -> str:
    """The mode of a reference record that does not store it, from what the LLM was shown.

    An ``sp`` oracle cannot tell ``sift_sp`` from ``sift_ssp`` (only the system message differs, and the
    reference does not store it): such a record's mode must be given (a recipe's ``mode:``).

    Args:
        input_text: the user content.
        instruction: the instruction (``""`` for SIFT).

    Returns:
        A mode name.

    Raises:
        ValueError: for an ``sp`` oracle.
    """
    oracle = "sp" if input_text.startswith("<audio>") else "s"
    if oracle == "sp":
        raise ValueError(
            "a target without its mode whose user content is an sp oracle may come from sift_sp/sit_sp (no "
            "system message) or sift_ssp/sit_ssp (one): say which (read_cuts(mode=...), a recipe's `mode:` "
            "beside `manifest:`); file names are not read"
        )
    if not instruction:
        return "sift_s"
    return "tsit_s" if any(instruction in prompts for prompts in ASR_PROMPTS.values()) else "sit_s"


def target_of(cut: Cut, mode: str | None = None) -> Target | None:
    """The target stored in a cut, also from reference manifests.

    Reference records have no ``mode``, ``system`` or ``finish_reason`` and mark a cut-short answer with a
    trailing ``<|truncated|>``: that mark is stripped and read as ``finish_reason="length"``.

    Args:
        cut: a generated cut.
        mode: the mode to assume when the record does not store one (e.g. from its file name); otherwise
            it is inferred from ``input_text``.

    Returns:
        The target, or ``None`` when the cut has none.
    """
    if not cut.supervisions:
        return None
    custom = cut.supervisions[0].custom or {}
    if custom.get("response") is None:
        return None
    response = str(custom["response"])
    finish_reason = custom.get("finish_reason")
    if response.endswith(TRUNCATION_MARK):
        response, finish_reason = response[: -len(TRUNCATION_MARK)], "length"
    instruction = custom.get("instruction") or ""
    input_text = custom.get("input_text") or ""
    mode_name = custom.get("mode") or mode or infer_mode(input_text, instruction)
    if "system" in custom:
        system, no_system_turn = custom["system"] or None, bool(custom.get("no_system_turn"))
    else:  # a reference record: its ssp modes used its own system text, the others no system turn at all
        system = REFERENCE_SYSTEM_MESSAGE if get_mode(mode_name).system else None
        no_system_turn = system is None
    return Target(
        response=response,
        mode=get_mode(mode_name).name,
        instruction=instruction,
        system=system,
        input_text=input_text,
        from_model=custom.get("from_model") or "",
        finish_reason=finish_reason or "stop",
        no_system_turn=no_system_turn,
    )


def with_target(cut: Cut, target: Target) -> Cut:
    """A copy of ``cut`` whose first supervision carries ``target`` under ``custom``."""
    supervision = cut.supervisions[0]
    custom = {**(supervision.custom or {}), **target.to_custom()}
    return replace(cut, supervisions=[replace(supervision, custom=custom), *cut.supervisions[1:]])


_SP_ORACLE = re.compile(r"<audio><meta>(.*?)</meta><text>(.*?)</text></audio>", re.DOTALL)
_META_PAIR = re.compile(rf"({'|'.join(META_KEYS)}): (.*?)(?=, (?:{'|'.join(META_KEYS)}): |$)")


def _oracle_of(input_text: str, instruction: str, oracle: str) -> tuple[str, dict[str, str]]:
    # The stored user content is the truth of what the LLM saw: read transcript and labels back from it,
    # so a manifest normalized by other code (the reference's) still rebuilds its exact context.
    content = input_text[: -len(instruction) - 1] if instruction and input_text.endswith(f" {instruction}") else input_text
    if oracle == "s":
        return content, {}
    match = _SP_ORACLE.fullmatch(content)
    if match is None:
        raise ValueError(f"stored input_text is not an sp oracle: {input_text[:80]!r}")
    return match.group(2), dict(_META_PAIR.findall(match.group(1)))


def target_conversation(
    cut: Cut, mode: str | None = None, encoders: Sequence[str] | None = None
) -> tuple[list[Message], Target]:
    """The exact conversation a generated cut's target was written for, and the target.

    Training renders these messages with audio in each slot (``PromptRenderer.render(messages,
    audio_lengths=..., answer=target.response, finished=target.finish_reason == "stop")``), so the
    model learns the answer in the very context the frozen LLM wrote it in: the stored system message and
    instruction are reused verbatim, and transcript and labels are read back from the stored user content.

    Args:
        cut: a cut written by ``azeros generate`` (or by the reference implementation).
        mode: the mode to assume for records that do not store one (see :func:`target_of`).
        encoders: ``None`` for the oracle as the LLM read it; the roles of a model's encoders for the audio
            slots that model hears the utterance in (see :func:`azeros.text.heard_parts`).

    Returns:
        ``(messages, target)``: ``[system?, user]`` messages and the target they produced.

    Raises:
        ValueError: when the cut has no target, or its stored context cannot be rebuilt exactly.
    """
    target = target_of(cut, mode)
    if target is None:
        raise ValueError(f"cut {cut.id} has no generated target")
    mode_obj = get_mode(target.mode)
    if target.input_text:
        transcript, meta = _oracle_of(target.input_text, target.instruction, mode_obj.oracle)
    else:
        utterance = Utterance.from_cut(cut)
        transcript, meta = utterance.transcript, utterance.meta
    context = dict(system=target.system, instruction=target.instruction)
    if target.input_text:
        rebuilt = target_messages(mode_obj, transcript, meta, **context)[-1].oracle_content()
        if rebuilt != target.input_text:
            raise ValueError(f"cut {cut.id}: rebuilt user content {rebuilt!r} differs from the stored one")
    return target_messages(mode_obj, transcript, meta, encoders=encoders, **context), target

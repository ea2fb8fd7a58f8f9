"""The systems a benchmark compares, behind one interface: answer items, and score a given answer.

* ``text``: the frozen LLM shown the oracle transcript of the speech, in the context its targets were
  generated in (the host model's system message): the upper bound.
* ``text-sp``: the same with the speaker labels too (the ``sp`` oracle): the paralinguistic upper bound.
* ``cascade``: Whisper tiny.en transcribes, the same LLM answers the transcript.
* ``azeros``: a trained model folder hears the audio.

Every system also computes the per-token cross-entropy of a given answer under its own input (teacher
forcing through the same frozen LLM). With the text system's greedy answer as the given answer, that is
the text-parity of the paper's idea: how close does hearing the speech come to reading it?
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from azeros.audio import load_audio
from azeros.eval.task import EvalItem
from azeros.inference import (
    Answer,
    EncoderSpec,
    GenerationParams,
    SpeechLLM,
    SpeechLLMConfig,
    answer_conversations,
    answer_cross_entropy,
    load_model,
)
from azeros.llm import embedded_path
from azeros.text import AudioContent, Message, PromptTurn, conversation, normalize_text

__all__ = [
    "AzerosSystem",
    "CascadeSystem",
    "System",
    "TextSystem",
    "WhisperTranscriber",
    "build_system",
    "build_systems",
    "text_host",
]

DEFAULT_LLM = "smollm2-135m-instruct"
_READERS = ("text", "text-sp", "cascade")
WHISPER = "whisper-tiny.en-ct2"


class System(ABC):
    """Something that answers benchmark items.

    Attributes:
        name: how it is called in tables (``text``, ``cascade``, ``SIFT_s``...).
    """

    name: str

    @abstractmethod
    def answer(self, items: Sequence[EvalItem], max_new_tokens: int) -> list[Answer]:
        """Greedy answers to a batch of items, in order."""

    @abstractmethod
    def cross_entropy(self, items: Sequence[EvalItem], answers: Sequence[Answer]) -> list[float]:
        """Per item, the mean negative log-likelihood per token of ``answers[i]`` given this system's input."""


class _ReadingSystem(System):
    """A system that shows the frozen LLM text in place of the speech (text oracle or ASR transcript)."""

    def __init__(self, host: SpeechLLM, oracle: Literal["s", "sp"]) -> None:
        self.host = host
        self.oracle = oracle

    @abstractmethod
    def transcripts(self, items: Sequence[EvalItem]) -> list[str]:
        """What the LLM reads in place of each item's speech."""

    def messages(self, item: EvalItem, transcript: str) -> list[Message]:
        """The conversation: the host's system message, then the oracle text (read, as when targets were
        generated) and the instruction."""
        audio = AudioContent(self.oracle, transcript, item.meta if self.oracle == "sp" else None)
        return conversation([PromptTurn("user", item.instruction, (audio,))], mode=self.host.chat_mode)

    def _conversations(self, items: Sequence[EvalItem]) -> list[list[Message]]:
        return [self.messages(item, text) for item, text in zip(items, self.transcripts(items), strict=True)]

    def answer(self, items: Sequence[EvalItem], max_new_tokens: int) -> list[Answer]:
        return answer_conversations(self.host, self._conversations(items), None, GenerationParams(max_new_tokens))

    def cross_entropy(self, items: Sequence[EvalItem], answers: Sequence[Answer]) -> list[float]:
        return answer_cross_entropy(self.host, self._conversations(items), None, answers)


class TextSystem(_ReadingSystem):
    """The frozen LLM given the oracle text: the upper bound a speech system can reach.

    Args:
        host: the model whose LLM, tokenizer and chat mode are used (its encoders are not).
        oracle: ``s`` (transcript) or ``sp`` (speaker labels too).
        name: the name in tables.
    """

    def __init__(self, host: SpeechLLM, oracle: Literal["s", "sp"] = "s", name: str | None = None) -> None:
        super().__init__(host, oracle)
        self.name = name or ("text" if oracle == "s" else "text-sp")

    def transcripts(self, items: Sequence[EvalItem]) -> list[str]:
        return [item.transcript for item in items]


class WhisperTranscriber:
    """Whisper through faster-whisper on CPU in float32, temperature 0: the same audio gives the same text.

    Args:
        path: a CTranslate2 Whisper folder or an embedded alias (default: Whisper tiny.en).
        beam_size: decoding beam width.
    """

    def __init__(self, path: str | Path = WHISPER, beam_size: int = 5) -> None:
        from faster_whisper import WhisperModel

        folder = Path(path)
        folder = folder if folder.is_dir() else embedded_path(str(path))
        self.model = WhisperModel(str(folder), device="cpu", compute_type="float32")
        self.beam_size = beam_size
        self._cache: dict[str, str] = {}

    def __call__(self, audio_path: str) -> str:
        """The normalized transcript of one recording (remembered: every task set shares recordings)."""
        if audio_path not in self._cache:
            segments, _ = self.model.transcribe(
                load_audio(audio_path), language="en", beam_size=self.beam_size, temperature=0.0,
                condition_on_previous_text=False, vad_filter=False,
            )
            self._cache[audio_path] = normalize_text(" ".join(s.text.strip() for s in segments))
        return self._cache[audio_path]


class CascadeSystem(_ReadingSystem):
    """ASR -> LLM: Whisper's transcript takes the place of the oracle transcript (no speaker labels).

    Args:
        host: the model whose LLM, tokenizer and chat mode are used.
        transcriber: turns an audio path into text.
        name: the name in tables.
    """

    def __init__(self, host: SpeechLLM, transcriber: WhisperTranscriber, name: str = "cascade") -> None:
        super().__init__(host, "s")
        self.transcriber = transcriber
        self.name = name

    def transcripts(self, items: Sequence[EvalItem]) -> list[str]:
        return [self.transcriber(item.audio) for item in items]


class AzerosSystem(System):
    """A trained speech-LLM hearing the audio (the instruction, if any, written after it).

    Args:
        model: the model.
        name: the name in tables.
    """

    def __init__(self, model: SpeechLLM, name: str = "azeros") -> None:
        self.model = model
        self.name = name

    def _heard(self, items: Sequence[EvalItem]) -> tuple[list[list[Message]], list[list]]:
        """The conversations (the model's chat mode, one audio, the instruction after it) and their audio."""
        conversations = [
            conversation([PromptTurn("user", item.instruction, (AudioContent(),))], mode=self.model.chat_mode,
                         encoders=self.model.roles)
            for item in items
        ]
        return conversations, [[load_audio(item.audio)] for item in items]

    def answer(self, items: Sequence[EvalItem], max_new_tokens: int) -> list[Answer]:
        return answer_conversations(self.model, *self._heard(items), GenerationParams(max_new_tokens))

    def cross_entropy(self, items: Sequence[EvalItem], answers: Sequence[Answer]) -> list[float]:
        return answer_cross_entropy(self.model, *self._heard(items), answers)


def text_host(llm: str = DEFAULT_LLM, *, chat_mode: str = "sift_s", device: str = "cpu") -> SpeechLLM:
    """A SpeechLLM used only for its LLM, tokenizer and chat mode (text and cascade systems without a model).

    Its encoder (Whisper tiny.en through CTranslate2, cheap to load) and random projector are never used.
    """
    config = SpeechLLMConfig(llm, [EncoderSpec("whisper-ct2", "semantic", {"path": WHISPER})], chat_mode=chat_mode)
    return SpeechLLM(config).to(device)


def build_system(spec: str, host: SpeechLLM, *, transcriber: WhisperTranscriber | None = None,
                 device: str = "cpu") -> System:
    """A system from its command-line name.

    Args:
        spec: ``text``, ``text-sp``, ``cascade``, or ``azeros:FOLDER`` / ``NAME=FOLDER`` for a trained model.
        host: the model lending its LLM to text and cascade systems.
        transcriber: the cascade's Whisper (built when needed).
        device: where a trained model goes.
    """
    if spec in ("text", "text-sp"):
        return TextSystem(host, "s" if spec == "text" else "sp")
    if spec == "cascade":
        return CascadeSystem(host, transcriber or WhisperTranscriber())
    return _trained_system(spec, device)


def _trained_system(spec: str, device: str) -> AzerosSystem:
    """``azeros:FOLDER`` (named ``azeros``) or ``NAME=FOLDER``."""
    name, sep, folder = spec.partition("=") if "=" in spec else spec.partition(":")
    if not sep or not folder:
        raise ValueError(f"unknown system {spec!r}; expected text, text-sp, cascade, azeros:FOLDER or NAME=FOLDER")
    return AzerosSystem(load_model(folder, device=device), name)


def build_systems(specs: Sequence[str], *, reference: str = "text", llm: str | None = None,
                  device: str = "cpu") -> tuple[list[System], System]:
    """The systems named on the command line, sharing one frozen LLM, and the parity reference.

    The text and cascade systems borrow the first trained model's LLM and chat mode (so the reference
    answers come from the very LLM and context the model was trained to match); without a trained
    model they use ``llm`` in the ``sift_s`` context.

    Args:
        specs: system names (see :func:`build_system`), in table order.
        reference: ``text`` or ``text-sp``: whose greedy answers open-ended items are scored against.
        llm: the LLM of text and cascade systems when no trained model is given.
        device: where models go.

    Returns:
        ``(systems, reference system)``; the reference is one of the systems when it is listed.
    """
    trained = {spec: _trained_system(spec, device) for spec in specs if spec not in _READERS}
    models = [system.model for system in trained.values()]
    if models and llm is not None and llm != models[0].config.llm:
        raise ValueError(f"--llm {llm} differs from the trained model's LLM {models[0].config.llm}")
    host = models[0] if models else text_host(llm or DEFAULT_LLM, device=device)
    transcriber = WhisperTranscriber() if "cascade" in specs else None
    systems = [trained.get(spec) or build_system(spec, host, transcriber=transcriber) for spec in specs]
    by_name = {spec: system for spec, system in zip(specs, systems)}
    if reference not in ("text", "text-sp"):
        raise ValueError(f"the reference must be text or text-sp, not {reference!r}")
    return systems, by_name.get(reference) or build_system(reference, host)

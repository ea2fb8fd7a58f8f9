"""The seven target-generation modes of the AZEROS paper, as data.

A mode says which oracle text the frozen LLM is shown (``s``: the transcript; ``sp``: transcript and
speaker labels), whether the ssp system message is used, and which instruction (if any) follows the
oracle. SIFT modes have no instruction: the LLM answers the speech itself. TSIT_s is the task-specific
baseline: the target is the transcript, the instruction one of a set of ASR prompts.

=========  ======  ======  ==================================  ==================
mode       oracle  system  instruction                         target
=========  ======  ======  ==================================  ==================
tsit_s     s       no      an ASR prompt, drawn per cut        the transcript
sit_s      s       no      "Repeat the above content."         LLM's answer
sift_s     s       no      none                                LLM's answer
sit_sp     sp      no      "Describe all the information ..."  LLM's answer
sift_sp    sp      no      none                                LLM's answer
sit_ssp    sp      yes     "Describe all the information ..."  LLM's answer
sift_ssp   sp      yes     none                                LLM's answer
=========  ======  ======  ==================================  ==================
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ASR_PROMPTS",
    "INSTRUCTIONS",
    "MODES",
    "SYSTEM_MESSAGE",
    "Mode",
    "get_mode",
    "instruction_for",
]

OracleKind = Literal["s", "sp"]
InstructionKind = Literal["repeat", "describe", "asr"]

# The reference's wording with its missing space ("audios.NEVER") restored.
SYSTEM_MESSAGE = (
    "You are a powerful virtual human who is capable of perceiving both text and speech inputs and "
    "generate precise natural responses. Speech inputs will be wrapped by <audio> and </audio> tags, "
    "containing both the text transcription and paralinguistic information. You must always pretend that "
    "you can indeed hear the input audios. NEVER mention that any metadata is provided through texts, and "
    "only use them in your response when necessary."
)

INSTRUCTIONS: dict[str, dict[str, str]] = {
    "repeat": {
        "en": "Repeat the above content.",
        "zh": "重复上述内容。",
        "de": "Wiederhole den obigen Inhalt.",
        "es": "Repite el contenido anterior.",
        "fr": "Répète le contenu ci-dessus.",
        "ja": "上記の内容を繰り返してください。",
    },
    "describe": {
        "en": "Describe all the information you can hear.",
        "zh": "描述你听到的所有信息。",
        "de": "Beschreibe alle Informationen, die du hören kannst.",
        "es": "Describe toda la información que puedas oír.",
        "fr": "Décris toutes les informations que tu peux entendre.",
        "ja": "聞こえるすべての情報を説明してください。",
    },
}

ASR_PROMPTS: dict[str, tuple[str, ...]] = {
    "en": (
        "Transcribe the audio.",
        "What does the speaker say?",
        "Write down exactly what is said.",
        "Please transcribe this speech.",
        "Convert the speech to text.",
        "Give the transcript of the audio.",
        "Recognize the speech and write it out.",
        "What is being said in this recording?",
    ),
    "zh": (
        "请转写这段音频。",
        "说话人说了什么？",
        "请把听到的内容写下来。",
        "将这段语音转换为文字。",
        "这段录音里说了什么？",
        "请给出这段音频的文字内容。",
    ),
}


@dataclass(frozen=True)
class Mode:
    """One way of turning an utterance's text form into a training target.

    Attributes:
        name: lowercase id, e.g. ``"sift_sp"``.
        oracle: ``"s"`` (transcript) or ``"sp"`` (transcript and speaker labels).
        system: whether the ssp system message is shown.
        instruction: which instruction follows the oracle; ``None`` for SIFT.
        self_generated: ``False`` only for TSIT_s, whose target is the transcript itself.
    """

    name: str
    oracle: OracleKind
    system: bool
    instruction: InstructionKind | None
    self_generated: bool = True

    @property
    def system_message(self) -> str | None:
        """The system message shown with this mode, or ``None``."""
        return SYSTEM_MESSAGE if self.system else None


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("tsit_s", "s", False, "asr", self_generated=False),
        Mode("sit_s", "s", False, "repeat"),
        Mode("sift_s", "s", False, None),
        Mode("sit_sp", "sp", False, "describe"),
        Mode("sift_sp", "sp", False, None),
        Mode("sit_ssp", "sp", True, "describe"),
        Mode("sift_ssp", "sp", True, None),
    )
}


def get_mode(name: str) -> Mode:
    """Look up a mode by name, case-insensitively (``"SIFT_s"`` works).

    Raises:
        ValueError: naming the unknown mode and the known ones.
    """
    mode = MODES.get(name.lower())
    if mode is None:
        raise ValueError(f"unknown mode {name!r}; known modes: {', '.join(MODES)}")
    return mode


_warned_languages: set[tuple[str, str]] = set()


def _base_language(language: str | None) -> str:
    return (language or "en").lower().replace("_", "-").split("-")[0]


def instruction_for(mode: Mode, language: str | None, key: str = "") -> str:
    """The instruction a mode puts after the oracle, in the utterance's language.

    Args:
        mode: the generation mode.
        language: an ISO code such as ``"en"``, ``"zh"`` or ``"zh-CN"``; ``None`` means English.
        key: a stable key (the cut id) that picks the ASR prompt of TSIT_s, so reruns draw the same.

    Returns:
        The instruction, or ``""`` for SIFT modes. Languages without a translation fall back to English
        with a warning (once per language and instruction), never an error.
    """
    if mode.instruction is None:
        return ""
    table = ASR_PROMPTS if mode.instruction == "asr" else INSTRUCTIONS[mode.instruction]
    lang = _base_language(language)
    if lang not in table:
        if (lang, mode.instruction) not in _warned_languages:
            _warned_languages.add((lang, mode.instruction))
            warnings.warn(
                f"no {mode.instruction!r} instruction for language {language!r}; using English",
                stacklevel=2,
            )
        lang = "en"
    choice = table[lang]
    if isinstance(choice, str):
        return choice
    # A hash, not random(): the same cut gets the same prompt in every run, shard and process.
    digest = hashlib.sha256(f"asr-prompt:{key}".encode()).digest()
    return choice[int.from_bytes(digest[:8], "big") % len(choice)]

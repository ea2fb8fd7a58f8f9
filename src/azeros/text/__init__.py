"""Text layer: normalization, speaker labels, the seven modes and the one prompt policy (no torch)."""

from azeros.text.labels import (
    AGE_GROUPS,
    META_KEYS,
    age_group,
    normalize_emotion,
    normalize_gender,
    normalize_label,
    speaker_meta,
)
from azeros.text.modes import ASR_PROMPTS, INSTRUCTIONS, MODES, SYSTEM_MESSAGE, Mode, get_mode, instruction_for
from azeros.text.normalize import is_cjk, normalize_text
from azeros.text.prompt import (
    IGNORE_INDEX,
    AudioSlot,
    AudioSpan,
    Message,
    PromptRenderer,
    RenderedChat,
    heard_parts,
    meta_text,
    oracle_parts,
    oracle_text,
    target_messages,
    user_message,
)

__all__ = [
    "AGE_GROUPS",
    "ASR_PROMPTS",
    "IGNORE_INDEX",
    "INSTRUCTIONS",
    "META_KEYS",
    "MODES",
    "SYSTEM_MESSAGE",
    "AudioSlot",
    "AudioSpan",
    "Message",
    "Mode",
    "PromptRenderer",
    "RenderedChat",
    "age_group",
    "get_mode",
    "heard_parts",
    "instruction_for",
    "is_cjk",
    "meta_text",
    "normalize_emotion",
    "normalize_gender",
    "normalize_label",
    "normalize_text",
    "oracle_parts",
    "oracle_text",
    "speaker_meta",
    "target_messages",
    "user_message",
]

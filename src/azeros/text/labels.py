"""Speaker labels (age, gender, emotion) as they appear in an oracle text.

Corpora spell labels every way: ``M``/``male``, ``neu``/``neutral``, ages as integers, decades
(``fourties``) or groups. Everything readable is mapped to one lowercase vocabulary; a placeholder (``?``,
``unk``, ...) is *unknown* (``None``), never written as ``?`` or ``null``; any other value outside the
vocabulary (``18-25``, ``40s``, ``contempt``) is kept verbatim, lowercased, as the reference keeps it
(:func:`verbatim_labels` says which, for the run's summary).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "AGE_GROUPS",
    "META_KEYS",
    "LabelError",
    "age_group",
    "label_problem",
    "normalize_emotion",
    "normalize_gender",
    "normalize_label",
    "speaker_meta",
    "verbatim_labels",
]

AGE_GROUPS = ("teenager", "young adult", "middle-age adult", "senior")
META_KEYS = ("age", "gender", "emotion")  # the order of keys in an oracle text

_UNKNOWN = {"", "?", "na", "n/a", "nan", "none", "null", "unk", "unknown", "-", "x"}

_AGE_WORDS = {
    "child": "teenager",
    "kid": "teenager",
    "teen": "teenager",
    "teens": "teenager",
    "teenager": "teenager",
    "young": "young adult",
    "young adult": "young adult",
    "adult": "young adult",
    "twenties": "young adult",
    "thirties": "young adult",
    "middle age": "middle-age adult",
    "middle-age": "middle-age adult",
    "middle aged": "middle-age adult",
    "middle-aged": "middle-age adult",
    "middle-age adult": "middle-age adult",
    "middle aged adult": "middle-age adult",
    "forties": "middle-age adult",
    "fourties": "middle-age adult",
    "fifties": "middle-age adult",
    "senior": "senior",
    "old": "senior",
    "elderly": "senior",
    "sixties": "senior",
    "seventies": "senior",
    "eighties": "senior",
    "nineties": "senior",
}

_GENDER_WORDS = {
    "m": "male",
    "male": "male",
    "man": "male",
    "boy": "male",
    "f": "female",
    "female": "female",
    "woman": "female",
    "girl": "female",
}

# Abbreviations used by IEMOCAP, CREMA-D, RAVDESS and friends.
_EMOTION_WORDS = {
    "neu": "neutral",
    "hap": "happy",
    "happiness": "happy",
    "joy": "happy",
    "exc": "excited",
    "ang": "angry",
    "anger": "angry",
    "sad": "sad",
    "sadness": "sad",
    "fru": "frustrated",
    "fea": "fearful",
    "fear": "fearful",
    "dis": "disgusted",
    "disgust": "disgusted",
    "sur": "surprised",
    "surprise": "surprised",
    "cal": "calm",
}

_MAX_HUMAN_AGE = 130
_VOCABULARY = {"age": set(AGE_GROUPS), "gender": set(_GENDER_WORDS.values()),
               "emotion": {"neutral", *_EMOTION_WORDS.values()}}


# What the oracle format reserves: the markup around the labels and the separators between them
# (``<audio><meta>age: ..., gender: ...</meta>``). A label holding one would rewrite the prompt.
_RESERVED = ("<", ">", ",", ":", "\n")


class LabelError(ValueError):
    """A label value that cannot be shown in the oracle text; says which key and why."""


def label_problem(value: object) -> str | None:
    """Why a raw label value cannot be a label (structured, or holding what the oracle format reserves), or ``None``."""
    if isinstance(value, (dict, list, tuple, set)):
        return f"a {type(value).__name__}, not a label"
    if value is None or isinstance(value, (bool, int, float)):
        return None
    reserved = sorted({ch for ch in str(value) if ch in _RESERVED})
    return f"holds {', '.join(map(repr, reserved))}, reserved by the oracle format" if reserved else None


def normalize_label(value: object) -> str | None:
    """Lowercase, strip and collapse a free-form label; ``None`` when it means "unknown".

    Args:
        value: a label as found in a manifest (any type).

    Returns:
        The cleaned label, or ``None`` for missing, empty or placeholder values (``?``, ``unk``, ...).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = " ".join(str(value).strip().lower().replace("_", " ").split())
    return None if text in _UNKNOWN else text


def age_group(value: object) -> str | None:
    """Map an age (number, numeric string, decade word or group name) to one of :data:`AGE_GROUPS`.

    Groups: teenager < 18, young adult 18-39, middle-age adult 40-60, senior > 60.

    Args:
        value: the age label.

    Returns:
        The age group, or ``None`` when the value is missing, non-positive, implausible or unreadable.
    """
    label = normalize_label(value)
    if label is None:
        return None
    if label in _AGE_WORDS:
        return _AGE_WORDS[label]
    try:
        years = float(label)
    except ValueError:
        return None
    if not math.isfinite(years) or years <= 0 or years > _MAX_HUMAN_AGE:
        return None
    if years < 18:
        return "teenager"
    if years < 40:
        return "young adult"
    if years <= 60:
        return "middle-age adult"
    return "senior"


def normalize_gender(value: object) -> str | None:
    """``M``/``man``/``Male`` -> ``male`` and so on; other non-empty values are kept, lowercased."""
    label = normalize_label(value)
    return None if label is None else _GENDER_WORDS.get(label, label)


def normalize_emotion(value: object) -> str | None:
    """``neu`` -> ``neutral``, ``Anger`` -> ``angry`` and so on; other values are kept, lowercased."""
    label = normalize_label(value)
    return None if label is None else _EMOTION_WORDS.get(label, label)


def _verbatim_age(value: object) -> str | None:
    # A word outside the vocabulary ("18-25", "40s") is shown as written; a number that maps to no group
    # (0, -3, 200) is not an age at all.
    label = normalize_label(value)
    if label is None:
        return None
    try:
        float(label)
    except ValueError:
        return label
    return None


def speaker_meta(labels: Mapping[str, object]) -> dict[str, str]:
    """The known speaker labels of an utterance, normalized and in oracle order (age, gender, emotion).

    Args:
        labels: raw labels; ``age_group`` wins over ``age`` when both are present and readable. An age word
            that maps to no group is kept verbatim (``age_group`` first), as the reference does.

    Returns:
        An ordered dict with only the known keys, e.g. ``{"gender": "female", "emotion": "sad"}``.

    Raises:
        LabelError: a value that would rewrite the oracle text (``sad</meta><text>...``, ``sad, gender: x``)
            or is structured; the same rule holds in generation, training and evaluation.
    """
    for key in ("age_group", "age", "gender", "emotion"):
        if (problem := label_problem(labels.get(key))) is not None:
            raise LabelError(f"label {key}={labels[key]!r}: {problem}")
    given = (labels.get("age_group"), labels.get("age"))
    age = next((group for value in given if (group := age_group(value))), None)
    age = age or next((label for value in given if (label := _verbatim_age(value))), None)
    values = {
        "age": age,
        "gender": normalize_gender(labels.get("gender")),
        "emotion": normalize_emotion(labels.get("emotion")),
    }
    return {key: values[key] for key in META_KEYS if values[key] is not None}


def verbatim_labels(labels: Mapping[str, object]) -> list[str]:
    """The keys of :func:`speaker_meta` whose value is kept verbatim, outside the vocabulary.

    Args:
        labels: raw labels.

    Returns:
        Keys in oracle order, e.g. ``["age"]`` for ``{"age_group": "18-25"}``.
    """
    meta = speaker_meta(labels)
    return [key for key, value in meta.items() if value not in _VOCABULARY[key]]

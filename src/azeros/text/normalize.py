"""Text normalization for transcripts: the form an oracle text is built from.

The reference implementation splits Hangul into characters (Korean loses its word spaces), spaces CJK
asymmetrically and keeps bracketed tags although its comment says otherwise. Here: Han, kana and CJK
punctuation are written without spaces between them, a CJK run and a neighbouring alphanumeric word are
always separated by exactly one space (both sides), Hangul keeps its spaces, and bracketed non-speech tags
(``[laughter]``, ``<noise>``, ``{breath}``) are removed when asked. Traditional Chinese characters become
simplified, as the reference's do (it uses zhconv, which is GPL; here OpenCC's ``t2s``, Apache-2.0), so a
corpus mixing both scripts gives the LLM one spelling per word. :func:`edit_distance` is how far a heard
sequence (of words or of tokens) is from the one said.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from functools import cache

__all__ = ["edit_distance", "is_cjk", "normalize_text"]

# Scripts written without spaces between words. Hangul is deliberately absent: Korean separates words.
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF01, 0xFF60),  # full-width punctuation and forms
    (0xFF61, 0xFF9F),  # half-width katakana
    (0x20000, 0x3FFFF),  # CJK extensions B and beyond
)

_TAG = re.compile(r"\[[^\[\]]*\]|<[^<>]*>|\{[^{}]*\}")
_SPACE = re.compile(r"\s+")


def is_cjk(char: str) -> bool:
    """Whether ``char`` belongs to a script written without spaces (Han, kana, CJK punctuation)."""
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


@cache
def _to_simplified():
    import opencc  # only text with Han characters needs it

    return opencc.OpenCC("t2s")


def normalize_text(text: str, *, remove_tags: bool = False, simplified_chinese: bool = True) -> str:
    """Normalize a transcript: optional tag removal, lowercase, CJK spacing, collapsed whitespace.

    Args:
        text: the raw transcript.
        remove_tags: drop bracketed non-speech tags such as ``[laughter]``, ``<noise>``, ``{breath}``.
        simplified_chinese: write traditional Chinese characters as simplified ones (the reference's
            default; turn it off for Japanese, whose kanji are not simplified Chinese).

    Returns:
        The normalized transcript, e.g. ``"Hello世界 NEWS"`` -> ``"hello 世界 news"``.
    """
    if remove_tags:
        text = _TAG.sub(" ", text)
    text = text.lower()
    out: list[str] = []
    previous = ""  # last non-space character written
    pending_space = False
    for char in text:
        if char.isspace():
            pending_space = True
            continue
        if previous:
            left_cjk, right_cjk = is_cjk(previous), is_cjk(char)
            if left_cjk and right_cjk:
                pass  # no space inside a CJK run, even where the source had one
            elif left_cjk != right_cjk and (previous.isalnum() and char.isalnum()):
                out.append(" ")  # a CJK run meets a word: exactly one space, on both sides
            elif pending_space:
                out.append(" ")
        out.append(char)
        previous = char
        pending_space = False
    normalized = _SPACE.sub(" ", "".join(out)).strip()
    if simplified_chinese and any(0x3400 <= ord(char) <= 0x9FFF or 0xF900 <= ord(char) <= 0xFAFF for char in normalized):
        normalized = _to_simplified().convert(normalized)
    return normalized


def edit_distance(said: Sequence[Hashable], heard: Sequence[Hashable]) -> int:
    """The Levenshtein distance: substitutions, deletions and insertions that turn ``said`` into ``heard``."""
    row = list(range(len(heard) + 1))
    for i, unit in enumerate(said, 1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(heard, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (unit != other))
    return row[-1]

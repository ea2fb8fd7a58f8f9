"""IFEval's verifiable instructions (Zhou et al. 2023), checked as the official evaluation does.

Written from the instruction definitions, not from Google's code: 25 instruction kinds, each a pure check
of the response given the item's keyword arguments. Language checks use ``langdetect`` (seeded, so
deterministic) like the original. The loose mode also accepts the response with its first and/or last
line removed and with ``*`` removed (8 variants), as the official "loose" accuracy does. An empty
response follows nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["INSTRUCTION_CHECKS", "follows_instructions"]


def _compare(count: int, relation: str, target: int) -> bool:
    if relation == "less than":
        return count < target
    if relation == "at least":
        return count >= target
    raise ValueError(f"unknown relation {relation!r}; IFEval uses 'less than' and 'at least'")


def _language(text: str) -> str | None:
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # langdetect samples; a fixed seed makes it a function of the text
    try:
        return detect(text)
    except LangDetectException:
        return None


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def _sentences(text: str) -> list[str]:
    # ends of sentences: . ! ? followed by space or the end, not after a lone initial or a common abbreviation
    parts = re.split(r"(?<!\b[A-Z])(?<!\bMr)(?<!\bMrs)(?<!\bDr)(?<!\bMs)(?<!\be\.g)(?<!\bi\.e)[.!?]+(?=\s|$)", text)
    return [p for p in parts if p.strip()]


def _paragraphs_by_stars(text: str) -> list[str] | None:
    """Paragraphs split by ``***`` lines; ``None`` when one is empty (not a valid split)."""
    parts = [p.strip() for p in re.split(r"\s?\*\*\*\s?", text)]
    inner = parts[1:-1] if len(parts) > 2 else parts
    if any(not p for p in inner):
        return None
    return [p for p in parts if p]


def _placeholders(text: str, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", text)) >= num_placeholders


def _postscript(text: str, postscript_marker: str) -> bool:
    marker = postscript_marker.strip().lower()
    if marker == "p.p.s":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "p.s.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker) + r".*$"
    return bool(re.findall(pattern, text.lower(), flags=re.MULTILINE))


def _bullets(text: str, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", text, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", text, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


def _highlights(text: str, num_highlights: int) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", text) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", text) if h.removeprefix("**").removesuffix("**").strip()]
    return len(single) + len(double) >= num_highlights


def _sections(text: str, section_spliter: str, num_sections: int) -> bool:
    parts = re.split(r"\s?" + re.escape(section_spliter) + r"\s?\d+\s?", text)
    return len(parts) - 1 >= num_sections


def _json(text: str) -> bool:
    body = text.strip()
    body = re.sub(r"^```(?:json|Json|JSON)?", "", body).removesuffix("```").strip()
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _two_responses(text: str) -> bool:
    parts = [p.strip() for p in text.split("******")]
    kept = [p for i, p in enumerate(parts) if p or 0 < i < len(parts) - 1]
    return len(kept) == 2 and all(kept) and kept[0] != kept[1]


def _nth_paragraph(text: str, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paragraphs = re.split(r"\n\n", text)
    kept = [p for p in paragraphs if p.strip()]
    if len(kept) != num_paragraphs or nth_paragraph > len(kept):
        return False
    words = kept[nth_paragraph - 1].strip().split()
    head = words[0].lstrip("'\"").rstrip(".,!?'\"").lower() if words else ""
    return head == first_word.lower()


def _paragraph_count(text: str, num_paragraphs: int) -> bool:
    parts = _paragraphs_by_stars(text)
    return parts is not None and len(parts) == num_paragraphs


INSTRUCTION_CHECKS: dict[str, Callable[..., bool]] = {
    "keywords:existence": lambda t, keywords: all(re.search(re.escape(k), t, re.I) for k in keywords),
    "keywords:frequency": lambda t, keyword, frequency, relation: _compare(
        len(re.findall(re.escape(keyword), t, re.I)), relation, frequency),
    "keywords:forbidden_words": lambda t, forbidden_words: not any(
        re.search(r"\b" + re.escape(w) + r"\b", t, re.I) for w in forbidden_words),
    "keywords:letter_frequency": lambda t, letter, let_frequency, let_relation: _compare(
        t.lower().count(letter.lower()), let_relation, let_frequency),
    "language:response_language": lambda t, language: _language(t) == language,
    "length_constraints:number_sentences": lambda t, num_sentences, relation: _compare(
        len(_sentences(t)), relation, num_sentences),
    "length_constraints:number_paragraphs": _paragraph_count,
    "length_constraints:number_words": lambda t, num_words, relation: _compare(len(_words(t)), relation, num_words),
    "length_constraints:nth_paragraph_first_word": _nth_paragraph,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:number_bullet_lists": _bullets,
    "detectable_format:constrained_response": lambda t: any(
        option in t for option in ("My answer is yes.", "My answer is no.", "My answer is maybe.")),
    "detectable_format:number_highlighted_sections": _highlights,
    "detectable_format:multiple_sections": _sections,
    "detectable_format:json_format": _json,
    "detectable_format:title": lambda t: any(m.strip() for m in re.findall(r"<<([^\n]+)>>", t)),
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": lambda t, prompt_to_repeat: t.strip().lower().startswith(
        prompt_to_repeat.strip().lower()),
    "startend:end_checker": lambda t, end_phrase: t.strip().strip('"').lower().endswith(end_phrase.strip().lower()),
    "startend:quotation": lambda t: len(t.strip()) > 1 and t.strip()[0] == '"' and t.strip()[-1] == '"',
    "change_case:capital_word_frequency": lambda t, capital_frequency, capital_relation: _compare(
        len([w for w in _words(t) if w.isupper()]), capital_relation, capital_frequency),
    "change_case:english_capital": lambda t: t.isupper() and _language(t) == "en",
    "change_case:english_lowercase": lambda t: t.islower() and _language(t) == "en",
    "punctuation:no_comma": lambda t: "," not in t,
}


def _loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    cut = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [response, response.replace("*", ""), *cut, *(c.replace("*", "") for c in cut)]


def follows_instructions(response: str, instruction_ids: Sequence[str], kwargs: Sequence[Mapping[str, Any]],
                         prompt: str, *, loose: bool) -> list[bool]:
    """Per instruction, whether ``response`` follows it.

    Args:
        response: the system's answer.
        instruction_ids: IFEval ids (``"punctuation:no_comma"``...).
        kwargs: per instruction, its arguments without unset (``None``) ones.
        prompt: the item's prompt (``combination:repeat_prompt`` repeats it when given no text).
        loose: also accept the official loose variants of the response.

    Raises:
        ValueError: an unknown instruction id.
    """
    variants = _loose_variants(response) if loose else [response]
    flags = []
    for instruction, arguments in zip(instruction_ids, kwargs, strict=True):
        check = INSTRUCTION_CHECKS.get(instruction)
        if check is None:
            raise ValueError(f"unknown IFEval instruction {instruction!r}")
        arguments = dict(arguments)
        if instruction == "combination:repeat_prompt":
            arguments.setdefault("prompt_to_repeat", prompt)
        flags.append(any(v.strip() and check(v, **arguments) for v in variants))
    return flags

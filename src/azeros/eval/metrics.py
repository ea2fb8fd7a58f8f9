"""Deterministic scoring of answers: multiple-choice parsing, numbers, phrases and instruction rules.

Peers score in ways that do not reproduce (peers.md): VoiceBench gives an unparseable multiple-choice
answer a random letter, AIR-Bench drops it from the denominator. Here every function is a pure function
of its inputs, and an answer that names no option (or several) is simply wrong: it stays in the count.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Sequence

from azeros.text import edit_distance

__all__ = [
    "LETTERS",
    "REPEAT_SLACK",
    "RULES",
    "answer_words",
    "check_rule",
    "choice_prompt",
    "contains_phrase",
    "content_word_recall",
    "last_number",
    "parse_choice",
    "shuffled_options",
    "word_errors",
]

LETTERS = string.ascii_uppercase
# Instruction rules: name -> the instruction written after the audio ({word} is the rule's argument).
RULES = {
    "one_word": "Answer with exactly one word.",
    "all_capitals": "Write your whole answer in capital letters only.",
    "starts_with": "Start your answer with the word \"{word}\".",
    "repeat": "Repeat exactly what was said, word for word, and nothing else.",
    "yes_no": "Is the speaker asking a question? Answer only yes or no.",
}

# a number (sign, decimals) or a word; "twenty-one" is split before, "1,000" joined before
_WORD = re.compile(r"(?<![a-z0-9])-?\d+(?:\.\d+)?|[a-z0-9]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_TEENS = {w: i for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split(), start=10)}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_SCALES = {"hundred": 100, "thousand": 1000}
REPEAT_SLACK = 4  # words an answer to "repeat" may add around what was said ("Sure, here it is:")


def _number_spans(words: Sequence[str]) -> list[tuple[int, int, int]]:
    """``(start, end, value)`` of every spelled-out number in ``words``: ``"thirty three four"`` -> 33, 4.

    A number ends where the next word could not continue it: a unit after a unit or a teen
    (``"five five"`` is two numbers), a tens word after anything but a scale.
    """
    spans: list[tuple[int, int, int]] = []
    start, total, current, last = None, 0, 0, ""
    for index, word in enumerate([*words, ""]):  # the empty sentinel closes a number at the end
        kind = ("unit" if word in _UNITS else "teen" if word in _TEENS else "tens" if word in _TENS
                else "scale" if word in _SCALES and start is not None else "")
        if word == "and" and last == "scale":  # "one hundred and five"
            continue
        continues = start is not None and (
            kind == "scale" or (kind == "unit" and last in ("tens", "scale"))
            or (kind in ("teen", "tens") and last == "scale"))
        if start is not None and not continues:
            spans.append((start, index, total + current))
            start, total, current = None, 0, 0
        if not kind:
            continue
        if start is None:
            start = index
        if kind == "scale":
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
        else:
            current += {**_UNITS, **_TEENS, **_TENS}[word]
        last = kind
    return spans


def answer_words(text: str) -> list[str]:
    """Lowercase words without punctuation, spelled numbers as digits (``"Ten of clubs!"`` -> ``["10", "of", "clubs"]``).

    Hyphens between letters split words; digits and number words compare equal, so "the 10 of clubs"
    repeats "ten of clubs".
    """
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text.lower())
    words = _WORD.findall(re.sub(r"(?<=\d),(?=\d{3})", "", text))
    for start, end, value in reversed(_number_spans(words)):
        words[start:end] = [str(value)]
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """``(edits, reference words)``: the word-level Levenshtein distance over :func:`answer_words`."""
    said = answer_words(reference)
    return edit_distance(said, answer_words(hypothesis)), len(said)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase``'s words occur in ``text`` contiguously, as whole words (case and punctuation ignored)."""
    words, needle = answer_words(text), answer_words(phrase)
    if not needle:
        return False
    return any(words[i : i + len(needle)] == needle for i in range(len(words) - len(needle) + 1))


# Function words that carry no content: a repeat is scored on the rest.
_FUNCTION_WORDS = frozenset("""a an the and or but of to in on at for from with by as is are was were be been
    am i you he she it we they me him her us them my your his its our their this that these those there here
    do does did have has had will would can could shall should may might must not no so than then too very
    just what which who whom whose when where why how all any some each every after me please""".split())


def content_word_recall(answer: str, said: str) -> float:
    """The share of the distinct content words of ``said`` that ``answer`` contains (0.0 when none).

    Content words are the words outside a short list of function words; digits and number words
    compare equal (:func:`answer_words`).
    """
    wanted = {w for w in answer_words(said) if w not in _FUNCTION_WORDS}
    if not wanted:
        return 0.0
    return len(wanted & set(answer_words(answer))) / len(wanted)


def last_number(text: str) -> float | None:
    """The last number stated in ``text``, in digits or words (``"it is seventeen."`` -> 17.0), or ``None``.

    The last one is taken because answers restate the question first (``"12 plus 5 is 17"``); the same
    rule GSM8K-style scoring uses.
    """
    numbers = [w for w in answer_words(text) if _NUMBER.fullmatch(w)]
    return float(numbers[-1]) if numbers else None


def choice_prompt(question: str, options: Sequence[str]) -> str:
    """A multiple-choice instruction in AIR-Bench Foundation's shape: question, lettered options, format."""
    lines = [question, *(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))]
    letters = ", ".join(LETTERS[: len(options)])
    return "\n".join(lines) + f"\nAnswer with the letter of the correct option ({letters}) only."


def shuffled_options(options: Sequence[str], key: str) -> tuple[str, ...]:
    """A fixed permutation of ``options`` chosen by ``key`` (the item id): the same on every machine and run."""
    return tuple(sorted(options, key=lambda option: hashlib.sha256(f"{key}\0{option}".encode()).digest()))


def parse_choice(answer: str, options: Sequence[str]) -> int | None:
    """Which option an answer names, deterministically; ``None`` when it names none or several.

    An option is named by its letter (``"B"``, ``"(B)"``, ``"B."`` at the start, ``"option b"``,
    ``"answer is B"``) or by its text as whole words (``"female"`` names female, not male). Letters
    win over texts, since an answer like ``"B. female"`` says both; if the letters named disagree, or no
    letter is given and the texts named disagree, the answer is ambiguous and parses to ``None``.

    Args:
        answer: the model's answer.
        options: the option texts, in letter order.

    Returns:
        The index of the named option, or ``None`` (scored wrong, never replaced by a guess).
    """
    valid = LETTERS[: len(options)]
    text = answer.strip()
    letters = set()
    bare = text.strip(" .:)(*\"'\n")
    if len(bare) == 1 and bare.upper() in valid:
        letters.add(bare.upper())
    # Upper-case letters only in free text, so the article "a" never reads as option A.
    for pattern in (rf"^\(?([{valid}])[\).:](?:\s|$)", rf"\(([{valid}])\)", rf"\*\*([{valid}])\*\*"):
        letters.update(re.findall(pattern, text))
    for match in re.finditer(rf"\b(?:option|choice|answer(?: is)?|letter)\s*:?\s*\(?([{valid}])\b", text, re.I):
        letters.add(match.group(1).upper())
    if letters:
        return valid.index(letters.pop()) if len(letters) == 1 else None
    named = {i for i, option in enumerate(options) if contains_phrase(text, option)}
    # "young adult" also contains no other option, but "senior" inside "not a senior" is still named:
    # an answer naming several options is ambiguous, not a guess.
    return named.pop() if len(named) == 1 else None


def check_rule(rule: str, answer: str, *, word: str = "", transcript: str = "") -> bool:
    """Whether an answer obeys one instruction rule of :data:`RULES`.

    Args:
        rule: the rule's name.
        answer: the model's answer.
        word: ``starts_with``: the word the answer must start with.
        transcript: ``repeat``: what was said.

    Returns:
        ``True`` when the rule holds. ``repeat`` holds when every word said appears, in order and
        contiguously, in the answer, with at most :data:`REPEAT_SLACK` words more (a preamble such as
        "Sure, here it is:"); digits and number words compare equal.
    """
    words = answer_words(answer)
    if rule == "one_word":
        return len(words) == 1
    if rule == "all_capitals":
        return any(c.isalpha() for c in answer) and not any(c.islower() for c in answer)
    if rule == "starts_with":
        return bool(words) and words[0] == word.lower()
    if rule == "repeat":
        return contains_phrase(answer, transcript) and len(words) <= len(answer_words(transcript)) + REPEAT_SLACK
    if rule == "yes_no":
        return words in (["yes"], ["no"])
    raise ValueError(f"unknown rule {rule!r}; known: {', '.join(RULES)}")


"""What every generation backend takes and returns.

A backend turns conversations into answers. It receives an iterable of :class:`Request` and yields a
:class:`Result` for each as soon as it is finished, in any order, so the runner can write it at once.
Local backends render the messages with the LLM's own chat template through
:class:`azeros.text.PromptRenderer`, so generation sees exactly the tokens training will see; a server
backend sends the messages' oracle text and lets the server apply the same template.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from azeros.text import Message

__all__ = ["Backend", "Request", "Result", "longest_repeat"]


@dataclass(frozen=True)
class Request:
    """One conversation to answer.

    Attributes:
        key: the cut id; results carry it back.
        messages: ``[system?, user]`` with oracle text in every audio slot.
    """

    key: str
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class Result:
    """The answer to one :class:`Request`.

    Attributes:
        key: the request's key.
        text: the answer, special tokens removed.
        finish_reason: ``stop`` (ended on an end token) or ``length`` (cut at the limit).
        num_tokens: generated tokens counted for throughput (the end token excluded).
        degenerate: why the answer is unusable (``"repeated token ..."``, ``"nan logits"``), or ``None``.
    """

    key: str
    text: str
    finish_reason: Literal["stop", "length"]
    num_tokens: int
    degenerate: str | None = None


class Backend(Protocol):
    """A way to run the frozen LLM over many conversations.

    Attributes:
        model_name: recorded as ``from_model`` in every target.
        settings: what decides its answers (``model``, ``max_new_tokens``, ``repetition_penalty``, ...), under
            the names ``azeros generate`` sets them by: recorded beside each output, so that a rerun with
            other settings is refused instead of mixing two kinds of target in one file.
        tokens_generated: tokens generated so far, by every row, finished or still running (the progress
            bar's rate; a backend that sees only finished answers counts those).
    """

    model_name: str
    settings: dict[str, Any]
    tokens_generated: int

    def generate(self, requests: Iterable[Request]) -> Iterator[Result]:
        """Answer every request, yielding each result as soon as it is done."""
        ...


def longest_repeat(items: Sequence[object]) -> int:
    """The length of the longest run of one item (token id, character) repeated back to back (0 if empty)."""
    longest = run = 0
    previous = None
    for token in items:
        run = run + 1 if token == previous else 1
        previous = token
        longest = max(longest, run)
    return longest

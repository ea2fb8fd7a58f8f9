"""WordNet's example sentences: natural English over a broad vocabulary, for learning to hear.

The embedded default's template texts say only ~1,900 distinct LLM tokens; a fifth of the held-out questions'
tokens and half of the real recordings' are none of them, so a projector aligned on them cannot say those
words (docs/results/hear). WordNet 3.0 (Debian ``wordnet-base``; licence: use and redistribution with
Princeton's notice) holds ~32,000 plain example sentences ("coffee is preferable to tea") over ~28,000
words. They are training texts only: :func:`azeros.data.corpus.plan_sentences` keeps those the corpus's
text split puts in ``train`` and that are no held-out text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["WORDNET", "wordnet_glosses", "wordnet_sentences"]

WORDNET = Path("/usr/share/wordnet")
_PLAIN = re.compile(r"[a-z][a-z ,'\-]*[a-z]")  # lowercase words, commas, apostrophes, hyphens; no digits


def wordnet_sentences(root: str | Path = WORDNET, keep: Callable[[str], bool] | None = None,
                      min_words: int = 4, max_words: int = 16) -> list[str]:
    """The plain example sentences of WordNet's glosses, lowercase, sorted, each once.

    Args:
        root: the folder of ``data.noun``, ``data.verb``, ``data.adj``, ``data.adv``.
        keep: an extra test a sentence must pass (e.g. every LLM token among the common ones).
        min_words: shortest sentence kept.
        max_words: longest sentence kept.

    Raises:
        FileNotFoundError: when WordNet is not installed (``apt-get install wordnet-base``).
    """
    found = (example for gloss in _glosses(root) for example in re.findall(r'"([^"]+)"', gloss))  # quoted
    return _plain(found, keep, min_words, max_words)


def wordnet_glosses(root: str | Path = WORDNET, keep: Callable[[str], bool] | None = None,
                    min_words: int = 4, max_words: int = 16) -> list[str]:
    """The plain definitions of WordNet's glosses ("an island country in the north atlantic"), lowercase.

    Definitions name what the examples rarely do: places, peoples, animals, numbers in words. A
    parenthesised aside is dropped; a definition with digits or other symbols is not kept.
    Arguments and errors as :func:`wordnet_sentences`.
    """
    found = (re.sub(r"\([^)]*\)", "", gloss.split(";")[0].split('"')[0]) for gloss in _glosses(root))
    return _plain(found, keep, min_words, max_words)


def _glosses(root: str | Path) -> Iterator[str]:
    folder = Path(root)
    for part in ("noun", "verb", "adj", "adv"):
        path = folder / f"data.{part}"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; `apt-get install wordnet-base` (or `make setup`)")
        for line in path.read_text(encoding="latin-1").splitlines():
            if not line.startswith("  "):  # the licence header
                yield line.partition(" | ")[2]


def _plain(texts: Iterable[str], keep: Callable[[str], bool] | None, min_words: int, max_words: int) -> list[str]:
    kept = set()
    for text in texts:
        text = " ".join(text.lower().split())
        if _PLAIN.fullmatch(text) and min_words <= len(text.split()) <= max_words:
            kept.add(text)
    return sorted(s for s in kept if keep is None or keep(s))

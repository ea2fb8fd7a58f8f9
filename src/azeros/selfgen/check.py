"""The self-elicit check (paper Goal 2, §5.7): do the targets carry the oracle's information?

SIFT is the best paradigm only when the frozen LLM, shown the oracle text with no instruction, brings up
everything in it by itself. A dialog-tuned LLM (or the ssp system prompt) tends to answer briefly and drop
details such as the speaker's age; a projector trained on such targets learns to drop them too. The check
measures, per mode, how often the targets mention each piece of oracle information:

* each speaker label (age group, gender, emotion) the oracle showed, matched by its words (whole words);
* the transcript's content words (stop words and words under 3 characters left out), as recall.

Where a SIFT mode surfaces a piece much less often than its SIT counterpart (same oracle and system), the
verdict says to train with SIT for that oracle, or a SIFT+SIT mix, as the paper does for ssp.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from lhotse.cut import Cut

from azeros.data import Utterance, target_of
from azeros.text import META_KEYS

__all__ = ["ElicitReport", "ModeCoverage", "elicit_report"]

# Words that count as mentioning a label value: whole words (regular expressions), so "he" is not found
# in "help", "man" not in "manner" and "male" not in "female". Pronouns do not count: an answer saying
# "he" is as likely to speak of someone in the transcript as of the speaker.
_FAMILIES = {
    "male": r"males?|man|men|gentlem[ae]n|boys?|guys?|masculine",
    "female": r"females?|wom[ae]n|lad(?:y|ies)|girls?|feminine",
    "teenager": r"teen\w*|adolescen\w*|youths?|kids?|child\w*",
    "young adult": r"young\w*|twenties|thirties",
    "middle-age adult": r"middle[- ]age\w*|forties|fifties|mature",
    "senior": r"seniors?|elder\w*|old\w*|retire\w*|sixties|seventies",
}
_STOP_WORDS = frozenset(
    "the and for are but not you your yours all any can had has have her was one our out him his how its "
    "may who what when where why which will with this that these those then than them they their there "
    "from into about would could should just some such very also been being does did doing more most "
    "other over only own same too under until while each few both here please tell give let like get got "
    "okay well hey hello excuse yes".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def _mentions(response: str, value: str) -> bool:
    # Other labels: words that start with their stem ("happ" finds happy, happiness).
    words = _FAMILIES.get(value) or rf"{re.escape(value.lower()[:4])}\w*"
    return re.search(rf"\b(?:{words})\b", response.lower()) is not None


def _content_words(transcript: str) -> set[str]:
    return {w for w in _WORD.findall(transcript.lower()) if len(w) >= 3 and w not in _STOP_WORDS}


@dataclass
class ModeCoverage:
    """How often one mode's targets surface each piece of oracle information.

    Attributes:
        mode: the mode.
        cuts: targets measured.
        label_hits: per label key, ``[mentioned, shown]`` counts.
        word_recall_sum: the sum over cuts of the fraction of transcript content words found.
        word_cuts: cuts with at least one content word.
    """

    mode: str
    cuts: int = 0
    label_hits: dict[str, list[int]] = field(default_factory=lambda: {key: [0, 0] for key in META_KEYS})
    word_recall_sum: float = 0.0
    word_cuts: int = 0

    def rates(self) -> dict[str, float | None]:
        """Coverage per piece (``None`` where the oracle never showed it): labels, then ``words``."""
        rates: dict[str, float | None] = {
            key: (hit / shown if shown else None) for key, (hit, shown) in self.label_hits.items()
        }
        rates["words"] = self.word_recall_sum / self.word_cuts if self.word_cuts else None
        return rates


@dataclass
class ElicitReport:
    """The check's result: coverage per mode, a printable table and a verdict.

    Attributes:
        coverage: per mode name.
        threshold: the coverage a SIFT mode should reach for each piece.
        margin: how much better SIT must do for the verdict to prefer it.
    """

    coverage: dict[str, ModeCoverage]
    threshold: float = 0.5
    margin: float = 0.2

    def table(self) -> str:
        """One row per mode, one column per piece of oracle information, as percentages."""
        columns = [*META_KEYS, "words"]
        lines = [f"{'mode':<10} {'cuts':>5} " + " ".join(f"{c:>8}" for c in columns)]
        for name, coverage in sorted(self.coverage.items()):
            rates = coverage.rates()
            cells = " ".join(f"{'-' if rates[c] is None else f'{100 * rates[c]:.0f}%':>8}" for c in columns)
            lines.append(f"{name:<10} {coverage.cuts:>5} {cells}")
        return "\n".join(lines)

    def shortfalls(self) -> dict[str, list[str]]:
        """Per SIFT mode, the pieces it surfaces too rarely (below ``threshold``, or ``margin`` below its
        SIT counterpart when that was measured)."""
        found = {}
        for name, coverage in self.coverage.items():
            if not name.startswith("sift_"):
                continue
            sit = self.coverage.get(name.replace("sift_", "sit_", 1))
            sit_rates = sit.rates() if sit else {}
            short = []
            for piece, rate in coverage.rates().items():
                if rate is None:
                    continue
                sit_rate = sit_rates.get(piece)
                if rate < self.threshold or (sit_rate is not None and sit_rate - rate >= self.margin):
                    short.append(piece)
            if short:
                found[name] = short
        return found

    def verdict(self) -> str:
        """What to train with, in words."""
        sift = [name for name in self.coverage if name.startswith("sift_")]
        if not sift:
            return "no SIFT mode was measured: generate a sample with a sift_* mode to check self-elicitation."
        shortfalls = self.shortfalls()
        lines = []
        for name in sorted(sift):
            sit = name.replace("sift_", "sit_", 1)
            if name not in shortfalls:
                lines.append(f"{name}: self-elicits (every piece >= {self.threshold:.0%}): train with SIFT.")
                continue
            pieces = ", ".join(shortfalls[name])
            if sit in self.coverage:
                lines.append(f"{name}: falls short on {pieces}; use {sit}, or a {name}+{sit} mix, "
                             "so the targets keep that information (paper §5.7).")
            else:
                lines.append(f"{name}: falls short on {pieces}; generate {sit} on the same sample to compare, "
                             f"and train with {sit} or a {name}+{sit} mix if it does better.")
        return "\n".join(lines)


def elicit_report(cuts: Iterable[Cut], *, threshold: float = 0.5, margin: float = 0.2) -> ElicitReport:
    """Measure self-elicitation over generated cuts (any mix of modes).

    Args:
        cuts: cuts with targets (``azeros generate`` outputs, or reference manifests).
        threshold: the coverage a SIFT mode should reach for each piece of information.
        margin: how much better its SIT counterpart must do for the verdict to prefer SIT.

    Returns:
        The report; ``report.table()`` and ``report.verdict()`` print it.
    """
    coverage: dict[str, ModeCoverage] = defaultdict(lambda: ModeCoverage(""))
    for cut in cuts:
        target = target_of(cut)
        if target is None:
            continue
        entry = coverage[target.mode]
        entry.mode = target.mode
        entry.cuts += 1
        utterance = Utterance.from_cut(cut)
        if target.input_text.startswith("<audio>"):
            for key, value in utterance.meta.items():
                entry.label_hits[key][1] += 1
                entry.label_hits[key][0] += _mentions(target.response, value)
        words = _content_words(utterance.transcript)
        if words:
            found = _content_words(target.response)
            entry.word_recall_sum += len(words & found) / len(words)
            entry.word_cuts += 1
    return ElicitReport(dict(coverage), threshold, margin)

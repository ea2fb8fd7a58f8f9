"""The self-elicit check (paper Goal 2, §5.7): do the targets carry the oracle's information?

SIFT is the best paradigm only when the frozen LLM, shown the oracle text with no instruction, brings up
everything in it by itself. A dialog-tuned LLM (or the ssp system prompt) tends to answer briefly and drop
details such as the speaker's age; a projector trained on such targets learns to drop them too. The check
measures, per mode, how often the targets mention each piece of oracle information:

* each speaker label (age group, gender, emotion) the oracle showed, matched by its words (whole words);
* the transcript's content words (stop words and words under 3 characters left out), as recall;
* how often the LLM declined instead of answering ("I'm sorry, as a chatbot I can't..."): a small LLM shown
  the oracle's markup does this often (SmolLM2-135M: half of its SIFT_sp answers), and a projector trained
  on such targets learns to decline (measured: asked to repeat a real recording, it apologises instead).

:meth:`ElicitReport.pick` compares a SIFT mode with its SIT counterpart (same oracle and system) piece by
piece: each piece goes to the mode whose targets carry it more often (SIFT on a tie, the paradigm that
generalizes best). SIFT when it wins every piece, SIT when SIT does, and both (a SIFT+SIT mix, as the paper
trains for ssp) when each wins some: a low coverage alone says nothing if the instruction does no better.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lhotse.cut import Cut

from azeros.data import ManifestWriter, Utterance, read_cuts, target_of
from azeros.text import META_KEYS

__all__ = [
    "DECLINE_WARNING",
    "ElicitReport",
    "ModeCoverage",
    "SpPick",
    "declines",
    "elicit_report",
    "write_without_declines",
]

# The share of declining targets from which the report warns.
DECLINE_WARNING = 0.1

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
# An answer that declines the request or apologises for itself instead of answering it.
_DECLINES = re.compile(
    r"\b(?:i'?m sorry|i am sorry|i apologi[sz]e|as an ai\b|as a (?:chatbot|language model|text-based)|"
    r"i (?:can't|cannot|am unable|'m unable|am not able|don't have the (?:ability|capability|capacity)))")


def _mentions(response: str, value: str) -> bool:
    # Other labels: words that start with their stem ("happ" finds happy, happiness).
    words = _FAMILIES.get(value) or rf"{re.escape(value.lower()[:4])}\w*"
    return re.search(rf"\b(?:{words})\b", response.lower()) is not None


def declines(response: str) -> bool:
    """Whether an answer declines the request or apologises instead of answering (see the module docstring)."""
    return _DECLINES.search(response.lower().replace("\u2019", "'")) is not None


def write_without_declines(manifest: str | Path, out: str | Path) -> tuple[int, int]:
    """Copy a target manifest to ``out`` (replaced if there), leaving out the cuts whose target declines.

    Returns:
        ``(kept, dropped)``: how many cuts were copied and how many declined.

    Raises:
        ValueError: naming the cut, when one carries no target.
    """
    out = Path(out)
    out.unlink(missing_ok=True)  # a fresh copy: the writer would otherwise resume what is there
    kept = dropped = 0
    with ManifestWriter(out) as writer:
        for cut in read_cuts(manifest):
            target = target_of(cut)
            if target is None:
                raise ValueError(f"{manifest}: cut {cut.id} carries no target")
            if declines(target.response):
                dropped += 1
            else:
                writer.write(cut)
                kept += 1
    return kept, dropped


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
        declined: targets in which the LLM declined instead of answering (:func:`declines`).
    """

    mode: str
    cuts: int = 0
    label_hits: dict[str, list[int]] = field(default_factory=lambda: {key: [0, 0] for key in META_KEYS})
    word_recall_sum: float = 0.0
    word_cuts: int = 0
    declined: int = 0

    def rates(self) -> dict[str, float | None]:
        """Coverage per piece (``None`` where the oracle never showed it): labels, then ``words``."""
        rates: dict[str, float | None] = {
            key: (hit / shown if shown else None) for key, (hit, shown) in self.label_hits.items()
        }
        rates["words"] = self.word_recall_sum / self.word_cuts if self.word_cuts else None
        return rates


@dataclass
class SpPick:
    """Which sp mode(s) to train with, and why.

    Attributes:
        modes: the SIFT mode, the SIT mode, or both (a mix).
        reason: each piece's coverage in both modes, which mode wins it, and the decision.
    """

    modes: list[str]
    reason: str


@dataclass
class ElicitReport:
    """The check's result: coverage per mode, a printable table, the pick and a verdict.

    Attributes:
        coverage: per mode name.
        threshold: the coverage a SIFT mode should reach for each piece when no SIT mode was measured to
            compare it with (the verdict then suggests measuring one).
    """

    coverage: dict[str, ModeCoverage]
    threshold: float = 0.5

    def table(self) -> str:
        """One row per mode, one column per piece of oracle information and the share declined, as percentages."""
        columns = [*META_KEYS, "words"]
        lines = [f"{'mode':<10} {'cuts':>5} " + " ".join(f"{c:>8}" for c in [*columns, "declined"])]
        for name, coverage in sorted(self.coverage.items()):
            rates = coverage.rates()
            cells = " ".join(f"{_percent(rates[c]):>8}" for c in columns)
            lines.append(f"{name:<10} {coverage.cuts:>5} {cells} {_percent(coverage.declined / coverage.cuts):>8}")
        return "\n".join(lines)

    def declining(self) -> list[str]:
        """A warning per mode whose targets decline at least ``DECLINE_WARNING`` of the time."""
        return [f"{name}: {coverage.declined} of {coverage.cuts} targets decline instead of answering (\"I'm sorry, "
                "as a chatbot...\"): a projector trained on them learns to decline; a larger LLM declines less"
                for name, coverage in sorted(self.coverage.items())
                if coverage.cuts and coverage.declined / coverage.cuts >= DECLINE_WARNING]

    def pick(self, sift: str = "sift_sp") -> SpPick:
        """Choose between a SIFT mode and its SIT counterpart by which carries each piece more often.

        Args:
            sift: the SIFT mode; its counterpart is the SIT mode of the same oracle and system.

        Returns:
            The pick: ``[sift]``, ``[sit]`` or ``[sift, sit]``, with the per-piece comparison as its reason.

        Raises:
            ValueError: when neither mode was measured.
        """
        sit = sift.replace("sift_", "sit_", 1)
        if sift not in self.coverage and sit not in self.coverage:
            raise ValueError(f"the check measured neither {sift} nor {sit}")
        if sit not in self.coverage or sift not in self.coverage:
            only = sift if sift in self.coverage else sit
            return SpPick([only], f"picked: {only} (only {only} was measured)")
        sift_rates, sit_rates = self.coverage[sift].rates(), self.coverage[sit].rates()
        wins: dict[str, list[str]] = {sift: [], sit: []}
        lines = [f"{sift} vs {sit}: coverage per piece; each piece goes to the mode that carries it more often"]
        for piece, sift_rate in sift_rates.items():
            sit_rate = sit_rates[piece]
            if sift_rate is None or sit_rate is None:
                winner = "not compared"
            else:
                winner = sift if sift_rate >= sit_rate else sit
                wins[winner].append(piece)
            lines.append(f"  {piece:<8} {sift} {_percent(sift_rate):>5}   {sit} {_percent(sit_rate):>5}   -> {winner}")
        if wins[sift] and wins[sit]:
            modes = [sift, sit]
            why = (f"{sift} carries {', '.join(wins[sift])} more, {sit} carries {', '.join(wins[sit])} more: "
                   "a mix keeps both")
        elif wins[sit]:
            modes, why = [sit], f"{sit} carries every piece more often"
        else:
            modes, why = [sift], f"{sift} carries every piece at least as often (paper §5.7: SIFT generalizes best)"
        lines.append(f"picked: {' + '.join(modes)} ({why})")
        return SpPick(modes, "\n".join(lines))

    def verdict(self) -> str:
        """What to train with, in words: per SIFT mode measured, the pick against its SIT counterpart."""
        sift = sorted(name for name in self.coverage if name.startswith("sift_"))
        if not sift:
            return "no SIFT mode was measured: generate a sample with a sift_* mode to check self-elicitation."
        lines = []
        for name in sift:
            sit = name.replace("sift_", "sit_", 1)
            if sit in self.coverage:
                lines.append(self.pick(name).reason)
                continue
            short = [piece for piece, rate in self.coverage[name].rates().items()
                     if rate is not None and rate < self.threshold]
            if short:
                lines.append(f"{name}: carries {', '.join(short)} in under {self.threshold:.0%} of its targets; "
                             f"generate {sit} on the same sample to compare.")
            else:
                lines.append(f"{name}: self-elicits (every piece >= {self.threshold:.0%}): train with SIFT.")
        return "\n".join(lines + self.declining())


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def elicit_report(cuts: Iterable[Cut], *, threshold: float = 0.5) -> ElicitReport:
    """Measure self-elicitation over generated cuts (any mix of modes).

    Args:
        cuts: cuts with targets (``azeros generate`` outputs, or reference manifests).
        threshold: the coverage a SIFT mode measured alone should reach for each piece of information.

    Returns:
        The report; ``report.table()``, ``report.pick()`` and ``report.verdict()`` tell what it found.
    """
    coverage: dict[str, ModeCoverage] = defaultdict(lambda: ModeCoverage(""))
    for cut in cuts:
        target = target_of(cut)
        if target is None:
            continue
        entry = coverage[target.mode]
        entry.mode = target.mode
        entry.cuts += 1
        entry.declined += declines(target.response)
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
    return ElicitReport(dict(coverage), threshold)

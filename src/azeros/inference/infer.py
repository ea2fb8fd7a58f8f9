"""Answer many recordings: Lhotse manifests or audio files in, one JSON line per item out.

Every input item ends up in the output exactly once: answered (``response``, ``finish_reason``) or
failed (``error``: the reason, e.g. an unreadable file). A failed item never stops the job. The output is
written as it goes and a rerun skips the ids answered in it, so an interrupted job resumes where it was;
the failed ones it tries again (a new record replaces the old failure, so each id stays in the output once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
import numpy as np
from tqdm import tqdm

from azeros.audio import SAMPLE_RATE, AudioError, load_audio
from azeros.data import BadLine, ManifestWriter, cut_audio, read_cuts
from azeros.inference.generate import generate
from azeros.llm import GenerationParams
from azeros.models import SpeechLLM

__all__ = ["AUDIO_SUFFIXES", "InferItem", "InferSummary", "infer", "iter_items"]

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass
class InferItem:
    """One recording to answer.

    Attributes:
        id: the cut id, or the file path as given.
        source: where the audio comes from (for the output record).
        instruction: text written after the audio (a manifest's stored instruction), if any.
        load: returns the 16 kHz waveform; raises with a reason when the audio is bad.
        error: why the item cannot be answered, known as it is read (a manifest line that is not a cut).
    """

    id: str
    source: str
    instruction: str | None
    load: Callable[[], np.ndarray]
    error: str | None = None


@dataclass
class InferSummary:
    """Counts of one run: ``total == answered + failed + skipped``.

    Attributes:
        total: items read from the inputs.
        answered: items answered in this run.
        failed: items recorded with an error in this run (bad audio, duplicate id).
        skipped: items already answered in the output by an earlier run.
    """

    total: int = 0
    answered: int = 0
    failed: int = 0
    skipped: int = 0


def _cut_item(cut) -> InferItem:
    if isinstance(cut, BadLine):
        return InferItem(cut.id, str(cut.path), None, lambda: None, error=str(cut))
    supervision = cut.supervisions[0] if cut.supervisions else None
    instruction = (supervision.custom or {}).get("instruction") if supervision is not None else None
    source = ", ".join(str(s.source) for s in cut.recording.sources) if cut.has_recording else ""
    return InferItem(cut.id, source, instruction or None, lambda: cut_audio(cut))


def iter_items(inputs: Sequence[str | Path]) -> Iterator[InferItem]:
    """Items of manifests (``.jsonl``/``.jsonl.gz``), audio files and folders of audio files, in order."""
    for given in inputs:
        path = Path(given)
        if path.name.endswith(MANIFEST_SUFFIXES):
            yield from (_cut_item(cut) for cut in read_cuts(path, bad_lines=True))
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
                yield InferItem(str(file), str(file), None, lambda file=file: load_audio(file))
        else:  # a file, or a missing path: the item then fails with the loader's reason
            yield InferItem(str(path), str(path), None, lambda path=path: load_audio(path))


def _chunks(items: Iterable[InferItem], size: int) -> Iterator[list[InferItem]]:
    chunk: list[InferItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def infer(
    model: SpeechLLM,
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    instruction: str | None = None,
    batch_size: int = 8,
    params: GenerationParams = GenerationParams(),
    progress: bool = True,
) -> InferSummary:
    """Answer every item of ``inputs`` into ``output`` (jsonl, resumable).

    Args:
        model: the model.
        inputs: manifests, audio files or folders.
        output: the ``.jsonl`` (or ``.jsonl.gz``) to append to; ids answered in it are skipped, failed
            ones tried again.
        instruction: text after every audio, overriding a manifest's stored instruction.
        batch_size: items per ``generate``.
        params: generation parameters.
        progress: show a progress bar.

    Returns:
        The counts; every item read is in exactly one of answered, failed and skipped.

    Raises:
        ValueError: ``batch_size`` is below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    summary = InferSummary()
    seen: set[str] = set()
    # failures are tried again: a file that was missing or broken may have been fixed since
    writer = ManifestWriter(output, redo=lambda record: "error" in record)
    with writer, tqdm(desc="infer", unit="item", disable=not progress) as bar:
        already = set(writer.done_ids)
        for chunk in _chunks(iter_items(inputs), batch_size):
            ready: list[tuple[InferItem, np.ndarray, str | None]] = []
            for item in chunk:
                summary.total += 1
                record = {"id": item.id, "source": item.source}
                if item.id in seen:
                    writer.write({**record, "error": "duplicate id: an earlier item with this id was already processed"})
                    summary.failed += 1
                    continue
                seen.add(item.id)
                if item.id in already:
                    summary.skipped += 1
                    continue
                if item.error is not None:
                    writer.write({**record, "error": item.error})
                    summary.failed += 1
                    continue
                try:
                    ready.append((item, item.load(), instruction or item.instruction))
                except AudioError as error:
                    writer.write({**record, "error": error.reason})
                    summary.failed += 1
            if ready:
                answers = generate(
                    model, [(wave, SAMPLE_RATE) for _, wave, _ in ready], [text for _, _, text in ready], params=params
                )
                for (item, _, text), answer in zip(ready, answers, strict=True):
                    writer.write({
                        "id": item.id, "source": item.source, "instruction": text,
                        "response": answer.text, "finish_reason": answer.finish_reason,
                    })
                    summary.answered += 1
            bar.update(len(chunk))
            bar.set_postfix(answered=summary.answered, failed=summary.failed, skipped=summary.skipped)
    return summary

"""Where task items get their audio: corpus manifests, and spoken versions of prompts written here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from azeros.audio import SAMPLE_RATE
from azeros.audio.synth import VoiceSetting, synthesize
from azeros.data import Utterance, read_cuts
from azeros.eval.task import Task

__all__ = ["ManifestTask", "Recording", "manifest_recordings", "spoken_prompt"]


@dataclass(frozen=True)
class Recording:
    """One recording with its text side.

    Attributes:
        id: the cut id (or the prompt's key).
        audio: path of the audio file.
        utterance: transcript and speaker labels.
    """

    id: str
    audio: str
    utterance: Utterance


def manifest_recordings(manifest: str | Path, limit: int | None = None) -> list[Recording]:
    """The first ``limit`` cuts of a manifest (file order), each with its audio path and labels.

    Raises:
        ValueError: a cut whose audio is not one plain file (items must be reloadable by path).
    """
    recordings = []
    for cut in read_cuts(manifest):
        if limit is not None and len(recordings) >= limit:
            break
        sources = cut.recording.sources if cut.has_recording else []
        if len(sources) != 1 or sources[0].type != "file" or cut.start != 0:
            raise ValueError(f"{manifest}: cut {cut.id} is not one whole audio file")
        recordings.append(Recording(cut.id, str(sources[0].source), Utterance.from_cut(cut)))
    return recordings


def spoken_prompt(text: str, key: str, folder: str | Path, setting: VoiceSetting) -> str:
    """Speak ``text`` once with ``setting`` into ``folder/{key}.wav``; returns the wav path.

    An existing file is reused: synthesis is deterministic, so it holds the same samples.
    """
    path = Path(folder) / f"{key}.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.wav")
        sf.write(partial, synthesize(text, setting), SAMPLE_RATE, subtype="PCM_16")
        partial.rename(path)
    return str(path)


class ManifestTask(Task):
    """A task set whose items are the first recordings of a corpus manifest.

    Args:
        manifest: the manifest (the corpus test split: held-out voices and texts).
        limit: how many recordings (``None``: all).
    """

    def __init__(self, manifest: str | Path, limit: int | None = None) -> None:
        self.manifest = manifest
        self.limit = limit

    def recordings(self) -> list[Recording]:
        """The recordings the items are made from."""
        return manifest_recordings(self.manifest, self.limit)

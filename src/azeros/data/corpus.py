"""The embedded default's labelled speech corpus: synthetic voices with known labels, and real recordings.

``build_synthetic_corpus`` speaks assistant-style texts with espeak-ng and flite voices whose gender is
known, an age-like label set by voice and pitch, and an emotion-like label set by prosody (pitch, pitch
range, rate, volume). Splits share neither texts nor voices with the test split:

* ``train``: training voices, 80% of the texts;
* ``dev``: training voices, 10% of the texts (held-out texts, seen voices);
* ``test``: held-out voices, the other 10% of the texts (nothing seen in training).

``build_sentence_corpus`` speaks other training texts (WordNet's example sentences: a broad vocabulary)
with the training voices. ``real_recordings_manifest`` wraps the 13 real recordings of Debian's
``pocketsphinx-testdata``.
Everything is a pure function of the seed: rerunning gives the same wav bytes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import CutSet, Recording, SupervisionSegment
from lhotse.cut import MonoCut
from tqdm import tqdm

from azeros.audio import SAMPLE_RATE, load_audio
from azeros.audio.synth import ENGINE_VOICES, VoiceSetting, synthesize
from azeros.data.assistant_texts import assistant_texts
from azeros.data.heldout import HELD_OUT_TEXTS
from azeros.text import normalize_text, speaker_meta

__all__ = [
    "AGE_PROSODY",
    "EMOTION_PROSODY",
    "HELD_OUT_ENGINE_VOICES",
    "SPLIT_VOICES",
    "PlannedUtterance",
    "build_sentence_corpus",
    "build_synthetic_corpus",
    "plan_corpus",
    "plan_sentences",
    "plan_utterance",
    "real_recordings_manifest",
    "speak_plan",
]

# emotion -> (pitch, pitch range, rate, volume), relative to the voice's own
EMOTION_PROSODY = {
    "neutral": (1.0, 1.0, 1.0, 1.0),
    "happy": (1.25, 1.8, 1.1, 1.1),
    "sad": (0.85, 0.35, 0.78, 0.45),
    "angry": (1.1, 1.4, 1.25, 1.9),
}
# age group -> (pitch, rate) factors; the grandma/grandpa voices are always seniors
AGE_PROSODY = {"teenager": (1.2, 1.1), "young adult": (1.0, 1.0), "senior": (0.85, 0.85)}
_OLD_VOICES = {"grandma", "grandpa"}

# Voices never used in training, kept out for ever: the evaluation speaks with them. Whole engines
# (festival, piper), an accent (en-gb-x-rp) and some speakers of the training engines.
_HELD_OUT_ESPEAK = ("f4", "grandma", "belinda", "linda", "steph3", "m3", "m7", "m8", "Hugo", "miguel", "travis")
_TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-gbclan")
# (engine, voice, accent) per split. The test split needs controllable prosody (its labels include
# emotion), so it holds the held-out espeak-ng and flite voices; festival and piper speak only the
# evaluation's held-out questions (:data:`HELD_OUT_ENGINE_VOICES`).
SPLIT_VOICES: dict[str, list[tuple[str, str, str]]] = {
    "train": [("espeak-ng", v, a) for v in ENGINE_VOICES["espeak-ng"] if v not in _HELD_OUT_ESPEAK
              for a in _TRAIN_ACCENTS]
    + [("flite", v, "en-us") for v in ("slt", "rms", "awb")],
    "test": [("espeak-ng", v, a) for v in _HELD_OUT_ESPEAK for a in ("en-us", "en-gb-x-rp")]
    + [("flite", "kal", "en-us")],
}
SPLIT_VOICES["dev"] = SPLIT_VOICES["train"]
# The voices of the evaluation's held-out spoken questions: every held-out engine, and held-out speakers
# of the training engines (with the held-out accent).
HELD_OUT_ENGINE_VOICES: list[tuple[str, str, str]] = [
    ("festival", "kal_diphone", "en-us"), ("festival", "ked_diphone", "en-us"), ("piper", "en_US-joe-medium", "en-us"),
    ("flite", "kal", "en-us"), ("espeak-ng", "f4", "en-us"), ("espeak-ng", "travis", "en-gb-x-rp"),
    ("espeak-ng", "linda", "en-gb-x-rp"), ("espeak-ng", "m7", "en-us"),
]


@dataclass(frozen=True)
class PlannedUtterance:
    """One planned utterance of the corpus: what is said, by whom, how."""

    cut_id: str
    split: str
    text: str
    setting: VoiceSetting
    age_group: str
    emotion: str

    @property
    def meta(self) -> dict[str, str]:
        """The speaker labels its cut carries, as the oracle shows them (see :func:`azeros.text.speaker_meta`)."""
        return speaker_meta({"gender": self.setting.gender, "age_group": self.age_group, "emotion": self.emotion})


def _text_split(text: str) -> str:
    bucket = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def plan_corpus(num_utterances: int, seed: int = 0) -> list[PlannedUtterance]:
    """Decide every utterance (text, voice, labels, prosody) without synthesizing anything.

    Args:
        num_utterances: how many in total (each text is spoken once).
        seed: the seed of every choice.

    Returns:
        The plan, ordered by cut id.
    """
    rng = random.Random(seed)
    plan = []
    for index, text in enumerate(assistant_texts(num_utterances, seed)):
        split = _text_split(text)
        plan.append(plan_utterance(f"synth-{split}-{index:05d}", split, text, rng))
    return plan


def plan_utterance(cut_id: str, split: str, text: str, rng: random.Random) -> PlannedUtterance:
    """Who says ``text`` and how: a voice of ``split``, an emotion and an age group, each drawn from ``rng``."""
    engine, voice, accent = rng.choice(SPLIT_VOICES[split])
    emotion = rng.choice(sorted(EMOTION_PROSODY))
    age = "senior" if voice in _OLD_VOICES else rng.choice(sorted(AGE_PROSODY))
    pitch, pitch_range, rate, volume = EMOTION_PROSODY[emotion]
    age_pitch, age_rate = AGE_PROSODY[age]
    setting = VoiceSetting(
        engine, voice, round(pitch * age_pitch, 3), pitch_range, round(rate * age_rate, 3), volume, accent
    )
    return PlannedUtterance(cut_id, split, text, setting, age, emotion)


def _cut(utterance: PlannedUtterance, wav: Path) -> MonoCut:
    # absolute: a manifest is read from other folders (training, evaluation) than the one that wrote it
    recording = Recording.from_file(wav.resolve(), recording_id=utterance.cut_id)
    supervision = SupervisionSegment(
        id=utterance.cut_id,
        recording_id=utterance.cut_id,
        start=0.0,
        duration=recording.duration,
        text=utterance.text,
        language="en",
        speaker=utterance.setting.speaker,
        gender=utterance.setting.gender,
        custom={"age_group": utterance.age_group, "emotion": utterance.emotion,
                "voice_setting": utterance.setting.to_dict()},
    )
    return MonoCut(utterance.cut_id, 0.0, recording.duration, 0, recording=recording, supervisions=[supervision])


def _speak(utterance: PlannedUtterance, wav: Path) -> MonoCut:
    if not wav.is_file():  # a rerun only fills in what is missing
        partial = wav.with_suffix(".partial.wav")
        sf.write(partial, synthesize(utterance.text, utterance.setting), SAMPLE_RATE, subtype="PCM_16")
        partial.rename(wav)
    return _cut(utterance, wav)


def speak_plan(plan: list[PlannedUtterance], wav_dir: Path, workers: int | None = None) -> list[MonoCut]:
    """Synthesize each planned utterance into ``wav_dir/{cut_id}.wav`` (a rerun fills in only what is missing).

    Returns:
        One cut per utterance, in plan order.
    """
    wav_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # threads wait on synthesizer subprocesses
        return list(tqdm(pool.map(lambda u: _speak(u, wav_dir / f"{u.cut_id}.wav"), plan),
                         total=len(plan), desc="synthesizing", unit="utt"))


def build_synthetic_corpus(
    out_dir: str | Path, num_utterances: int = 2000, seed: int = 0, workers: int | None = None
) -> dict[str, Path]:
    """Synthesize the corpus and write one Lhotse manifest per split.

    Args:
        out_dir: where ``wavs/`` and ``cuts_{split}.jsonl.gz`` go.
        num_utterances: total utterances.
        seed: the seed of every choice.
        workers: parallel synthesizer processes (default: the CPU count).

    Returns:
        The manifest path of each split.
    """
    out = Path(out_dir)
    cuts = speak_plan(plan_corpus(num_utterances, seed), out / "wavs", workers)
    paths = {}
    for split in ("train", "dev", "test"):
        paths[split] = out / f"cuts_{split}.jsonl.gz"
        CutSet.from_cuts(c for c in cuts if c.id.startswith(f"synth-{split}-")).to_file(paths[split])
    return paths


def plan_sentences(texts: list[str], num: int | None, seed: int = 0, name: str = "sentence") -> list[PlannedUtterance]:
    """``num`` training utterances of other texts (``None``: every eligible one), each by a training voice (cut
    ids ``{name}-train-NNNNN``).

    Only texts that the corpus's text split puts in ``train`` are drawn, so none is ever a dev or test text
    of any corpus, and none is a held-out question.

    Raises:
        ValueError: fewer than ``num`` texts are eligible.
    """
    reserved = {normalize_text(text) for text in HELD_OUT_TEXTS}
    eligible = sorted({t for t in texts if _text_split(t) == "train" and normalize_text(t) not in reserved})
    num = len(eligible) if num is None else num
    if len(eligible) < num:
        raise ValueError(f"{num} sentences asked for, {len(eligible)} of the {len(texts)} given are training texts")
    rng = random.Random(seed)
    return [plan_utterance(f"{name}-train-{index:05d}", "train", text, rng)
            for index, text in enumerate(rng.sample(eligible, num))]


def build_sentence_corpus(texts: list[str], out_dir: str | Path, num: int, seed: int = 0,
                          workers: int | None = None) -> Path:
    """Speak :func:`plan_sentences` into ``out_dir/wavs`` and write ``out_dir/cuts_train.jsonl.gz`` (its path)."""
    out = Path(out_dir)
    path = out / "cuts_train.jsonl.gz"
    CutSet.from_cuts(speak_plan(plan_sentences(texts, num, seed), out / "wavs", workers)).to_file(path)
    return path


_POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
# The three raw recordings come without transcripts; these were transcribed by Whisper tiny.en and
# checked by ear (digits spelled out).
_RAW_TRANSCRIPTS = {
    "goforward": "go forward ten meters",
    "numbers": "thirty three four six nine two",
    "something": "go somewhere and do something",
}


def _pocketsphinx_items(root: Path) -> Iterator[tuple[str, Path | None, np.ndarray | None, str]]:
    for folder in ("librivox", "cards"):
        table = "transcription" if folder == "librivox" else "cards.transcription"
        for line in (root / folder / table).read_text().splitlines():
            words, _, name = line.rpartition("(")
            text = " ".join(w for w in words.split() if w not in ("<s>", "</s>"))
            yield f"{folder}-{name.strip(') ')}", root / folder / f"{name.strip(') ')}.wav", None, text
    for name, text in _RAW_TRANSCRIPTS.items():
        samples = np.fromfile(root / f"{name}.raw", dtype="<i2")  # 16 kHz, 16-bit, mono, headerless
        yield f"raw-{name}", None, samples, text


def real_recordings_manifest(out_dir: str | Path, root: str | Path = _POCKETSPHINX) -> Path:
    """A test manifest of pocketsphinx-testdata's 13 real recordings (raw files are converted to wav).

    Raises:
        FileNotFoundError: when the package is not installed (``apt-get install pocketsphinx-testdata``).
    """
    root, out = Path(root), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: missing; `apt-get install pocketsphinx-testdata` (or `make setup`)")
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    cuts = []
    for cut_id, wav, samples, text in _pocketsphinx_items(root):
        if wav is None:
            wav = out / "wavs" / f"real-{cut_id}.wav"
            sf.write(wav, samples, SAMPLE_RATE, subtype="PCM_16")
        load_audio(wav, name=cut_id)  # a broken file is reported here, by name, not during training
        recording = Recording.from_file(Path(wav).resolve(), recording_id=f"real-{cut_id}")
        supervision = SupervisionSegment(
            id=f"real-{cut_id}", recording_id=recording.id, start=0.0, duration=recording.duration,
            text=text, language="en",
        )
        cuts.append(MonoCut(f"real-{cut_id}", 0.0, recording.duration, 0, recording=recording,
                            supervisions=[supervision]))
    path = out / "cuts_real.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    return path

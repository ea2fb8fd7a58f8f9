"""Small generated manifests of espeak-ng speech, written the way ``azeros generate`` writes them.

Each cut points at a real wav, carries a transcript, language and speaker labels, and under ``custom``
a target: the response and the exact context (mode, system message, instruction, user content) it would
have been generated from. Responses are fixed varied sentences, so the targets are known in advance.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lhotse import Recording, SupervisionSegment
from lhotse.cut import MonoCut

from azeros.data import ManifestWriter, Target, Utterance, with_target
from azeros.text import get_mode, instruction_for, target_messages

__all__ = ["RESPONSES", "TEXTS", "write_manifest"]

TEXTS = (
    "what is the capital of france", "tell me a joke about cats", "how do i boil an egg",
    "the train was late again", "why is the sky blue", "please set a reminder for tomorrow",
    "how far is the moon", "i lost my keys again", "write a poem about the sea",
    "can dogs eat chocolate", "who painted the mona lisa", "the meeting moved to thursday",
    "how do airplanes fly", "suggest a name for my puppy", "what causes earthquakes", "thank you very much",
    "is coffee healthy", "explain black holes simply", "what time is it in tokyo", "i passed my driving test",
)
RESPONSES = (
    "Paris is the capital.", "Cats are funny.", "Boil it for six minutes.", "That is annoying.",
    "Light scatters in the air.", "Reminder set.", "About four hundred thousand kilometres.",
    "Check your pockets.", "Waves sing at night.", "No, it is toxic for dogs.", "Leonardo da Vinci.",
    "Thursday works well.", "Wings create lift.", "How about Biscuit?", "Moving tectonic plates.",
    "You are welcome!", "In moderation, yes.", "Gravity traps light.", "It is evening there.",
    "Congratulations!",
)
_VOICES = (("f3", "female", 60), ("m3", "male", 40), ("f1", "female", 70), ("m1", "male", 50))
_EMOTIONS = ("happy", "sad", "neutral", "angry")


def _speak(text: str, voice: str, pitch: int, wav: Path) -> None:
    if not wav.is_file():
        audio = subprocess.run(["espeak-ng", "-v", f"en-us+{voice}", "-p", str(pitch), "--stdout", text],
                               check=True, capture_output=True).stdout
        wav.write_bytes(audio)


def write_manifest(path: Path, wav_dir: Path, indices: range | list[int], mode: str = "sift_s") -> Path:
    """Write a generated manifest of espeak-ng utterances ``TEXTS[i]`` with targets ``RESPONSES[i]``.

    Args:
        path: the ``.jsonl.gz`` to write.
        wav_dir: where the wavs go (reused when present).
        indices: which texts (mod ``len(TEXTS)``); the cut ids carry the index and mode.
        mode: the generation mode the targets claim.
    """
    wav_dir.mkdir(parents=True, exist_ok=True)
    mode_obj = get_mode(mode)
    with ManifestWriter(path) as writer:
        for i in indices:
            text, response = TEXTS[i % len(TEXTS)], RESPONSES[i % len(RESPONSES)]
            voice, gender, pitch = _VOICES[i % len(_VOICES)]
            wav = wav_dir / f"utt{i:03d}-{voice}.wav"
            _speak(text, voice, pitch, wav)
            cut_id = f"utt{i:03d}-{mode}"
            recording = Recording.from_file(wav, recording_id=cut_id)
            supervision = SupervisionSegment(
                cut_id, cut_id, 0.0, recording.duration, text=text, language="en", speaker=voice, gender=gender,
                custom={"emotion": _EMOTIONS[i % len(_EMOTIONS)]},
            )
            cut = MonoCut(cut_id, 0.0, recording.duration, 0, recording=recording, supervisions=[supervision])
            utterance = Utterance.from_cut(cut)
            instruction = instruction_for(mode_obj, "en", key=cut_id)
            messages = target_messages(mode_obj, utterance.transcript, utterance.meta, language="en", instruction=instruction)
            target = Target(response, mode_obj.name, instruction, mode_obj.system_message,
                            messages[-1].oracle_content(), "fixture", "stop")
            writer.write(with_target(cut, target))
    return path

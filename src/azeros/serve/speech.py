"""Spoken replies: answers read aloud by espeak-ng (a cascaded TTS, as in the paper's demo)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["SpeechError", "Speaker"]


class SpeechError(RuntimeError):
    """espeak-ng is missing or failed."""


class Speaker:
    """Reads text aloud with espeak-ng.

    Args:
        voice: an espeak-ng voice (``en``, ``en-us``, ``de``, ...).
        words_per_minute: speaking rate.
        timeout: seconds one synthesis may take.

    Raises:
        SpeechError: espeak-ng is not installed.
    """

    def __init__(self, voice: str = "en", words_per_minute: int = 170, timeout: float = 30.0) -> None:
        self.program = shutil.which("espeak-ng")
        if self.program is None:
            raise SpeechError("spoken replies need espeak-ng (apt-get install espeak-ng)")
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.timeout = timeout

    def _run(self, text: str, *extra: str) -> None:
        command = [self.program, "-v", self.voice, "-s", str(self.words_per_minute), "--stdin", *extra]
        try:
            # Text goes through stdin, never the command line: an answer starting with "-" is not an option.
            subprocess.run(command, input=text.encode(), capture_output=True, timeout=self.timeout, check=True)
        except subprocess.CalledProcessError as error:
            raise SpeechError(f"espeak-ng failed: {error.stderr.decode(errors='replace').strip()}") from error
        except subprocess.TimeoutExpired as error:
            raise SpeechError(f"espeak-ng took more than {self.timeout:g} s") from error

    def synthesize(self, text: str) -> bytes:
        """The text spoken, as a wav file's bytes."""
        with tempfile.TemporaryDirectory() as folder:
            # A file, not --stdout: the streamed wav header has no real length and some decoders refuse it.
            path = Path(folder) / "reply.wav"
            self._run(text, "-w", str(path))
            return path.read_bytes()

    def say(self, text: str) -> None:
        """Play the text on this machine's sound device."""
        self._run(text)

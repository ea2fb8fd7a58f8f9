"""An answer as an iterator of text pieces, generated on a worker thread while the caller reads."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from azeros.audio import AudioSource
from azeros.inference.chat import chat
from azeros.models import SpeechLLM

__all__ = ["stream_chat"]


def stream_chat(
    model: SpeechLLM, audio: AudioSource | Sequence[AudioSource] | None = None, text: str | None = None, **options: Any
) -> Iterator[str]:
    """Like :func:`azeros.inference.chat`, but yields the answer piece by piece as it is generated.

    Args:
        model: the model.
        audio: a path, encoded bytes, ``(array, rate)``, a list of those, or ``None``.
        text: an instruction or question written after the audio.
        **options: ``history``, ``system`` and ``params``, as for :func:`azeros.inference.chat`.
    """
    pieces: queue.Queue[str | BaseException | None] = queue.Queue()

    def run() -> None:
        try:
            chat(model, audio, text, on_text=pieces.put, **options)
            pieces.put(None)
        except BaseException as error:  # handed to the consumer, which re-raises it
            pieces.put(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    while (piece := pieces.get()) is not None:
        if isinstance(piece, BaseException):
            raise piece
        yield piece
    worker.join()

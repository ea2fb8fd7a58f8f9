"""What a compressing projector heard: its greedy CTC transcript of each item, and the word error rate.

A CTC-compressing semantic projector (:class:`azeros.models.projector.Projector`) turns speech into a run
of the LLM's own token embeddings, so what the LLM reads can be written down. Its word error rate on the
held-out voices is the most direct measure of whether the model hears, apart from how the LLM answers:
the learning curve reports it beside the answers' accuracy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azeros.audio import load_audio
from azeros.eval.metrics import word_errors
from azeros.eval.task import EvalItem
from azeros.inference import SpeechLLM

__all__ = ["heard_word_error_rate", "hears_in_tokens"]


def hears_in_tokens(model: SpeechLLM) -> bool:
    """Whether the model's semantic projector compresses into token embeddings (so a transcript exists)."""
    projector = model.projectors["semantic"] if "semantic" in model.projectors else None
    return projector is not None and projector.blank is not None


def heard_word_error_rate(model: SpeechLLM, items: Sequence[EvalItem], out_file: str | Path,
                          batch_size: int = 16) -> dict[str, Any]:
    """Transcribe each item as the projector heard it; write ``out_file`` (jsonl) and return the rates.

    Returns:
        ``{"wer": ..., "by_voice": {engine: wer}}`` over all items' transcript words; ``engine`` is the
        item's source for the held-out voices (``festival``, ``piper``, ...) and ``real`` for recordings.
    """
    projector = model.projectors["semantic"]
    vocabulary = model.llm.get_input_embeddings().weight  # [V, H]
    totals: dict[str, list[int]] = {}
    rows = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        frames = model.encode([load_audio(item.audio, name=item.id) for item in chunk])["semantic"]
        projected, counts = projector(frames[0].to(model.device), frames[1])  # [b, n, H], [b]
        for item, tokens in zip(chunk, projector.heard(projected, counts, vocabulary), strict=True):
            heard = model.tokenizer.decode(tokens)
            edits, words = word_errors(item.transcript, heard)
            source = item.id.rsplit("/", 1)[-1].split("-")[0] if item.task == "spoken_qa" else "real"
            for key in ("all", source):
                totals.setdefault(key, [0, 0])
                totals[key][0] += edits
                totals[key][1] += words
            rows.append({"id": item.id, "transcript": item.transcript, "heard": heard, "errors": edits, "words": words})
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    Path(out_file).write_text("".join(json.dumps(row) + "\n" for row in rows))
    rate = {key: round(e / w, 4) if w else None for key, (e, w) in totals.items()}
    return {"wer": rate.pop("all", None), "by_voice": rate}

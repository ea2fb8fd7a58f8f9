"""The paper's encoder shape: a Zipformer2 at the large preset (TTA's and Auden-Voice's, 153M parameters,
random weights), in one run:

    .venv/bin/python benchmarks/zipformer_encoder.py [--utterances 6] [--min-seconds 2] [--max-seconds 8] [--repeats 2]

* padded batch vs one utterance at a time: the encoder's frames per second over the same utterances (of
  lengths spread between ``--min-seconds`` and ``--max-seconds``), all in one padded batch, then each alone.
  Padding is masked, so both give the same frames (checked); the batch does the padding's work too.
* encoder cache hit vs recomputing: the training loop's :class:`azeros.training.EncoderCache` serving the
  same utterances' frames from its safetensors shards (reopened, as a later step or run finds them) vs the
  encoder computing them (padded batch).

Each timing is the best of ``--repeats``. On CPU the encoder runs in fp32 with the threads torch was given
(set ``OMP_NUM_THREADS``); on a GPU in fp32 too. On one CPU thread a batch has no parallelism to gain and
pays for its padding in full, so the batch / alone ratio is then about real frames over padded frames (try
``--min-seconds 5 --max-seconds 5`` for a batch without padding). The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import soundfile as sf
import torch
from lhotse import Recording

from azeros.models.encoders import ZipformerEncoder
from azeros.training import EncoderCache

RATE = 16000


def best_of(repeats: int, work) -> float:
    """The shortest wall time of ``repeats`` runs of ``work()`` (synchronised on a GPU)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = ZipformerEncoder(config={}).to(device)  # {}: the large preset
    parameters = sum(p.numel() for p in encoder.parameters())
    rng = np.random.default_rng(0)
    seconds = np.linspace(args.min_seconds, args.max_seconds, args.utterances)
    waves = [0.1 * rng.standard_normal(int(s * RATE)).astype(np.float32) for s in seconds]
    total_frames = sum(encoder.num_frames(w.size) for w in waves)

    batch_frames, lengths = encoder(waves)  # warm-up, and the frames the others are checked against
    for i, wave in enumerate(waves):
        alone, _ = encoder([wave])
        assert torch.allclose(alone[0], batch_frames[i, : lengths[i]], atol=1e-4), f"utterance {i} differs"
    batched = best_of(args.repeats, lambda: encoder(waves))
    one_by_one = best_of(args.repeats, lambda: [encoder([w]) for w in waves])

    with tempfile.TemporaryDirectory() as folder:
        cuts = []  # the cache is keyed by cut: each utterance as a wav file and its Lhotse cut
        for i, wave in enumerate(waves):
            sf.write(f"{folder}/utt{i}.wav", wave, RATE)
            cuts.append(Recording.from_file(f"{folder}/utt{i}.wav", recording_id=f"utt{i}").to_cut())
        cache = EncoderCache(f"{folder}/cache", encoder, shard_items=max(2, args.utterances // 2))
        for i, cut in enumerate(cuts):
            cache.put(cut, batch_frames[i, : lengths[i]])
        cache.flush()
        reopened = EncoderCache(f"{folder}/cache", encoder)
        served = [reopened.get(cut) for cut in cuts]
        assert all(torch.equal(s.to(device), batch_frames[i, : lengths[i]].to(s.dtype)) for i, s in enumerate(served))
        cache_hit = best_of(args.repeats, lambda: [reopened.get(cut) for cut in cuts])

    result = {
        "device": device, "threads": torch.get_num_threads(), "parameters": parameters,
        "utterances": args.utterances, "audio_seconds": round(float(seconds.sum()), 2), "frames": total_frames,
        "batched_frames_per_s": round(total_frames / batched, 1),
        "one_by_one_frames_per_s": round(total_frames / one_by_one, 1),
        "batched_over_one_by_one": round(one_by_one / batched, 2),
        "cache_hit_frames_per_s": round(total_frames / cache_hit, 1),
        "cache_hit_over_recompute": round(batched / cache_hit, 1),
    }
    print(f"Zipformer2 large preset, {parameters / 1e6:.1f}M parameters, {device}, {result['threads']} threads; "
          f"{args.utterances} utterances, {result['audio_seconds']} s, {total_frames} frames at 25 Hz")
    print(f"padded batch  {result['batched_frames_per_s']:>10} frames/s")
    print(f"one at a time {result['one_by_one_frames_per_s']:>10} frames/s   batch / alone = {result['batched_over_one_by_one']}x")
    print(f"cache hit     {result['cache_hit_frames_per_s']:>10} frames/s   cache / recompute = {result['cache_hit_over_recompute']}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Training throughput on the embedded default: a naive loop vs azeros's, in one run.

    .venv/bin/python benchmarks/train.py [--utterances 96] [--batch 8] [--steps 10] [--targets MANIFEST]

Data: espeak-ng/flite speech from ``azeros corpus`` with fixed assistant-style responses of varied length,
written as a generated SIFT_s manifest; or, with ``--targets``, the first cuts of a manifest that
``azeros generate`` wrote (e.g. the embedded default's own SIFT_s targets: answers up to 128 tokens).
Model: SmolLM2-135M-Instruct (frozen) + Whisper tiny.en (CTranslate2, frozen) + a trainable projector,
fp32 on CPU.

* naive: batches of ``--batch`` in input order, the encoder runs on every step, fp32, and the loss computed
  the way the reference implementation does (transformers' ``labels=``: logits and cross-entropy at every
  position, padded, with the prompt recomputed in every row);
* ours: ``azeros.training.train`` with the encoder cache (filled beforehand by ``fill_cache``, timed
  apart), duration-bucketed batches of at most ``--batch`` cuts, each split into micro-batches of
  similar rendered length (``data.max_tokens_per_forward``), each pass starting after the prompt prefix its
  rows share (its keys and values computed once), logits only at the answer positions.

Both process the same number of utterances. Work is counted as matmul FLOPs, 4 x parameters per token
(forward, plus the backward to the inputs; the frozen weights get no gradient): the naive loop does the
LLM body and the LM head at every padded position; the necessary work is the body after the shared prompt
prefix and the LM head at the supervised positions. Their ratio (``work_ratio``) is the speed-up that
skipping work alone gives at equal FLOP/s. The machine's fp32 matmul peak is measured in the same run,
before and after the loops (the best of both: this machine's rate drifts by ~15% within minutes);
``peak_fraction`` is ours' necessary work per second over it. The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from azeros.data import ManifestWriter, Target, Utterance, read_cuts, with_target
from azeros.data.assistant_texts import assistant_texts
from azeros.data.corpus import build_synthetic_corpus
from azeros.models import shared_prefix
from azeros.text import IGNORE_INDEX, get_mode, target_messages
from azeros.training import build_model, fill_cache, load_recipe, train
from azeros.training.data import load_items, make_batch, manifest_cuts, render_item


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of a square matmul on this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def benchmark_manifest(work: Path, count: int, targets: str | None = None) -> Path:
    """``work/sift_s_0.jsonl.gz``: the first ``count`` cuts of a generated manifest ``targets``, or else
    :func:`write_targets` over a synthetic corpus spoken into ``work/corpus``."""
    manifest = work / "sift_s_0.jsonl.gz"
    if targets:
        with ManifestWriter(manifest) as writer:
            for cut in itertools.islice(read_cuts(targets), count):
                writer.write(cut)
        return manifest
    corpus = build_synthetic_corpus(work / "corpus", num_utterances=max(80, count * 10 // 7), seed=0)
    return write_targets(corpus["train"], manifest, count)


def write_targets(corpus: Path, out: Path, count: int) -> Path:
    """A SIFT_s manifest of the corpus's first ``count`` cuts with fixed responses of 1 to 5 sentences."""
    rng = random.Random(0)
    sentences = assistant_texts(200, seed=1)
    mode = get_mode("sift_s")
    with ManifestWriter(out) as writer:
        for cut in list(read_cuts(corpus))[:count]:
            utterance = Utterance.from_cut(cut)
            messages = target_messages(mode, utterance.transcript, utterance.meta, instruction="")
            response = " ".join(rng.sample(sentences, rng.randint(1, 5))).capitalize()
            writer.write(with_target(cut, Target(response, "sift_s", "", None, messages[-1].oracle_content(), "fixed", "stop")))
    return out


def naive_loop(recipe, steps: int, batch_size: int) -> float:
    """Encoders every step, input order, fp32, the reference's loss. Returns samples/s."""
    model = build_model(recipe.model, recipe.seed, verbose=False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    cuts = list(manifest_cuts(recipe.data.train[0].manifest))
    batches = [cuts[i : i + batch_size] for i in range(0, len(cuts), batch_size)][: steps + 1]
    for index, cuts_of_batch in enumerate(batches):
        if index == 1:  # the first step warms up
            start = time.perf_counter()
        batch = make_batch(model, load_items(cuts_of_batch, model.roles), {})  # no cache: encoder every step
        loss = model.llm(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, labels=batch.labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    seconds = time.perf_counter() - start
    return sum(len(b) for b in batches[1:]) / seconds


def work_per_sample(recipe, manifest: Path, batch_size: int) -> tuple[float, float]:
    """Matmul FLOPs per sample: the naive loop's (padded batches in input order, LM head everywhere) and the
    necessary (after the shared prefix; LM head at supervised positions)."""
    model = build_model(recipe.model, 0, verbose=False)
    body = sum(p.numel() for n, p in model.llm.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)
    head = model.llm.get_output_embeddings().weight.numel()
    chats = [render_item(model, item) for item in load_items(manifest_cuts(manifest), model.roles)]
    lengths = [len(c.input_ids) for c in chats]
    padded = sum(len(lengths[i : i + batch_size]) * max(lengths[i : i + batch_size]) for i in range(0, len(lengths), batch_size))
    prefix = len(shared_prefix(chats))
    supervised = sum(sum(label != IGNORE_INDEX for label in c.labels) for c in chats)
    naive = 4 * (body + head) * padded
    needed = 4 * body * (sum(lengths) - prefix * len(chats)) + 4 * head * supervised
    return naive / len(chats), needed / len(chats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=96, help="at least (steps + 1) x batch")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max-tokens-per-forward", type=int, default=1024,
                        help="ours: micro-batches of similar length up to this many padded tokens")
    parser.add_argument("--targets", default=None, help="a generated manifest to train on instead of fixed responses")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="azeros-train-bench-"))
    torch.manual_seed(0)

    manifest = benchmark_manifest(work, args.utterances, args.targets)
    recipe_file = work / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump({
        "output_dir": str(work / "ours"), "seed": 0,
        "model": {"llm": "smollm2-135m-instruct", "dtype": "fp32",
                  "encoders": [{"kind": "whisper-ct2", "role": "semantic", "options": {"path": "whisper-tiny.en-ct2"}}]},
        "data": {"train": [{"manifest": str(manifest)}], "max_cuts": args.batch, "max_duration": 1000.0,
                 "num_buckets": 4, "buffer_size": args.utterances,
                 "max_tokens_per_forward": args.max_tokens_per_forward},
        "optim": {"lr": 1e-4, "warmup_steps": 0},
        "average": {"kind": "none"},
        "run": {"max_steps": args.steps + 1, "device": "cpu", "precision": "fp32", "log_every": 1,
                "valid_every": 0, "save_every": 0, "progress": False},
    }))
    recipe = load_recipe(recipe_file)

    peak = matmul_peak()
    naive_samples = naive_loop(recipe, args.steps, args.batch)
    print(f"naive: {naive_samples:.2f} samples/s", file=sys.stderr)

    start = time.perf_counter()
    fill_cache(recipe)
    cache_seconds = time.perf_counter() - start
    train(recipe)
    records = [json.loads(x) for x in (work / "ours" / "log.jsonl").read_text().splitlines()]
    timed = [r for r in records if r["kind"] == "train" and r["step"] > 1]  # step 1 warms up
    ours_samples = sum(r["samples"] for r in timed) / sum(r["samples"] / r["samples_per_s"] for r in timed)
    print(f"ours: {ours_samples:.2f} samples/s (cache filled once in {cache_seconds:.1f}s)", file=sys.stderr)

    peak = max(peak, matmul_peak())
    print(f"matmul peak (fp32, 2048^3): {peak:.1f} GFLOP/s", file=sys.stderr)
    naive_work, needed_work = work_per_sample(recipe, manifest, args.batch)
    naive_gflops, ours_gflops = naive_work * naive_samples / 1e9, needed_work * ours_samples / 1e9
    print(f"work per sample: naive {naive_work / 1e9:.1f} GFLOP at {naive_gflops:.1f} GFLOP/s, "
          f"necessary {needed_work / 1e9:.1f} GFLOP at {ours_gflops:.1f} GFLOP/s (ours)", file=sys.stderr)
    result = {
        "naive_samples_per_s": round(naive_samples, 3), "ours_samples_per_s": round(ours_samples, 3),
        "speedup": round(ours_samples / naive_samples, 2), "work_ratio": round(naive_work / needed_work, 2),
        "cache_fill_s": round(cache_seconds, 1), "matmul_peak_gflops": round(peak, 1),
        "naive_gflops": round(naive_gflops, 1), "ours_gflops": round(ours_gflops, 1),
        "peak_fraction": round(ours_gflops / peak, 3), "utterances": args.utterances, "batch": args.batch,
        "steps": args.steps, "max_tokens_per_forward": args.max_tokens_per_forward,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

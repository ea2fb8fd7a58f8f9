"""Where the time of a training step and of decoding goes (torch.profiler), as shares of the wall time.

    .venv/bin/python benchmarks/profile_steps.py [--steps 4] [--batch 8] [--targets MANIFEST] [--cuts 64]
        [--max-new-tokens 256]

Training: the training loop's own steps (the model built, the encoder cache filled and one step run first,
untimed; then each step: the batch built from the cache, split into micro-batches as ``data.max_tokens_per_forward``
says, each teacher-forced pass and its backward, the optimizer step) on the same data as ``benchmarks/train.py``
(its fixed responses, or with ``--targets`` a manifest that ``azeros generate`` wrote). Decoding: the
transformers backend of target generation answering ``--cuts`` prompts of ``benchmarks/synthetic_cuts.py``
together. Each operator's own CPU time (not its children's) is put in one group: matmuls, attention (the
fused kernel or its math parts and softmax), copies and gathers (copy, cat, index, masked scatter...),
elementwise and reductions (norms, activations, masks), and the rest; what no operator accounts for is Python
and framework overhead. Run alone on the machine.
The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
import yaml
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_cuts import TRANSCRIPTS  # noqa: E402
from train import benchmark_manifest  # noqa: E402

from azeros.selfgen.base import Request  # noqa: E402
from azeros.selfgen.transformers_backend import TransformersBackend  # noqa: E402
from azeros.text import get_mode, target_messages  # noqa: E402
from azeros.training import build_model, fill_cache, load_recipe  # noqa: E402
from azeros.training.data import load_items, manifest_cuts, token_batches  # noqa: E402
from azeros.training.loop import open_caches  # noqa: E402

GROUPS = {  # operator name fragments, first match wins
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul"),
    "attention": ("scaled_dot_product", "aten::_softmax", "aten::softmax", "flash_attention"),
    "copies and gathers": ("aten::copy_", "aten::cat", "aten::index", "aten::masked_scatter", "aten::stack",
                           "aten::clone", "aten::_to_copy", "aten::contiguous", "aten::gather", "aten::embedding"),
    "elementwise and reductions": ("aten::mul", "aten::add", "aten::sub", "aten::div", "aten::neg", "aten::pow",
                                   "aten::rsqrt", "aten::mean", "aten::sum", "aten::silu", "aten::where",
                                   "aten::eq", "aten::ne", "aten::lt", "aten::le", "aten::gt", "aten::ge",
                                   "aten::bitwise", "aten::__and__", "aten::__or__", "aten::fill_", "aten::zero_",
                                   "aten::log_softmax", "aten::nll_loss", "aten::exp", "aten::max", "aten::cos",
                                   "aten::sin", "aten::argmax"),
}


def shares(prof: profile, wall: float) -> dict[str, float]:
    """Each group's share of ``wall`` seconds, by operators' own CPU time; the unaccounted rest is overhead."""
    seconds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        group = next((name for name, parts in GROUPS.items() if any(p in event.key for p in parts)), "other operators")
        seconds[group] += event.self_cpu_time_total / 1e6
    seconds["Python and framework overhead"] = max(0.0, wall - sum(seconds.values()))
    return {group: round(value / wall, 3) for group, value in sorted(seconds.items(), key=lambda kv: -kv[1])}


def profile_training(work: Path, steps: int, batch: int, targets: str | None) -> tuple[dict[str, float], float]:
    manifest = benchmark_manifest(work, batch * (steps + 1), targets)
    recipe_file = work / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump({
        "output_dir": str(work / "run"), "seed": 0,
        "model": {"llm": "smollm2-135m-instruct", "dtype": "fp32",
                  "encoders": [{"kind": "whisper-ct2", "role": "semantic", "options": {"path": "whisper-tiny.en-ct2"}}]},
        "data": {"train": [{"manifest": str(manifest)}], "max_cuts": batch, "max_duration": 1000.0},
        "run": {"device": "cpu", "precision": "fp32", "progress": False},
    }))
    recipe = load_recipe(recipe_file)
    fill_cache(recipe)
    model = build_model(recipe.model, recipe.seed, verbose=False)
    model.train()
    caches = open_caches(recipe, model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    items = load_items(manifest_cuts(manifest), model.roles, caches=caches)

    def step(index: int) -> None:
        for micro in token_batches(model, items[index * batch : (index + 1) * batch], caches,
                                   recipe.data.max_tokens_per_forward):
            model(micro).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(0)  # warms up (the shared prefix's keys and values are computed here)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for index in range(1, steps + 1):
            step(index)
        wall = time.perf_counter() - start
    return shares(prof, wall), wall


def profile_decoding(cuts: int, max_new_tokens: int) -> tuple[dict[str, float], float]:
    backend = TransformersBackend("smollm2-135m-instruct", dtype="fp32", device="cpu", max_new_tokens=max_new_tokens,
                                  max_batch=cuts)
    mode = get_mode("sift_s")
    requests = [Request(str(i), tuple(target_messages(mode, TRANSCRIPTS[i % len(TRANSCRIPTS)], {})))
                for i in range(cuts)]
    list(backend.generate(requests[:2]))  # warm up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        list(backend.generate(requests))
        wall = time.perf_counter() - start
    return shares(prof, wall), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="training steps profiled")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--targets", default=None, help="a generated manifest to train on instead of fixed responses")
    parser.add_argument("--cuts", type=int, default=64, help="prompts decoded together")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="azeros-profile-"))
    training, training_wall = profile_training(work, args.steps, args.batch, args.targets)
    decoding, decoding_wall = profile_decoding(args.cuts, args.max_new_tokens)
    for name, table, wall in (("training", training, training_wall), ("decoding", decoding, decoding_wall)):
        print(f"{name} ({wall:.1f} s profiled):", file=sys.stderr)
        for group, share in table.items():
            print(f"  {group:32s} {share:6.1%}", file=sys.stderr)
    print(json.dumps({"training": training, "training_seconds": round(training_wall, 1), "decoding": decoding,
                      "decoding_seconds": round(decoding_wall, 1), "steps": args.steps, "batch": args.batch,
                      "cuts": args.cuts, "max_new_tokens": args.max_new_tokens}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

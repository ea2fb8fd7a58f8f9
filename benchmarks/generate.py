"""Target generation speed: the reference's method against azeros' continuous batching, in one run.

    .venv/bin/python benchmarks/generate.py --cuts 200 --batch-size 64 [--max-batch 128]

Both methods answer the same SIFT_s prompts (rendered by the one prompt policy) with the same model,
dtype, greedy decoding and a 256-token limit:

(a) reference: HF ``generate`` on left-padded batches of a fixed size, in input order;
(b) azeros: :class:`azeros.selfgen.transformers_backend.TransformersBackend` (prompts sorted by length,
    finished rows leave the batch at once, freed slots refilled), at most ``--max-batch`` rows at a time
    (default: the reference's batch size). Continuous batching keeps every row busy, so it can run wider
    batches than padded generate, where a wider batch also means more rows waiting for the longest answer.

Useful tokens are the answers' tokens up to their end (what a manifest keeps). The degenerate-output stop
is disabled here so both methods write the same answers. ``peak_fraction`` is ours' useful tokens/s at two
FLOPs per weight per token (the decoding matmuls' work; prefill and attention not counted) over the fp32
matmul peak (the best of its measures before and after the methods run: this machine's rate drifts by
~15% within minutes). ``matmul_bound_tokens_per_s`` is what ours would reach if a decoding step cost
only its matmuls: each step's LLM linear layers (the LM head included) timed alone at the rows that step
decodes (when every prompt starts together: ``--cuts`` <= the most rows), with their weights streaming from
memory as in a real step; prefill, attention, norms and all overhead cost nothing there. The last line is a
JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import GenerationConfig

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_cuts import TRANSCRIPTS  # noqa: E402
from train import matmul_peak  # noqa: E402

from azeros.selfgen.base import Request  # noqa: E402
from azeros.selfgen.transformers_backend import TransformersBackend  # noqa: E402
from azeros.text import get_mode, target_messages  # noqa: E402


def reference_method(backend: TransformersBackend, prompts: list[list[int]], batch_size: int,
                     max_new_tokens: int) -> list[list[int]]:
    """HF generate on padded batches of ``batch_size`` in input order; each answer cut at its first stop."""
    stop_ids = backend.renderer.stop_ids
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                              top_k=None, eos_token_id=stop_ids, pad_token_id=stop_ids[0])
    answers = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        width = max(map(len, batch))
        ids = torch.tensor([[stop_ids[0]] * (width - len(p)) + p for p in batch], device=backend.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=backend.device)
        with torch.inference_mode():
            out = backend.llm.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        for row in out[:, width:].tolist():
            end = next((i for i, token in enumerate(row) if token in stop_ids), len(row))
            answers.append(row[:end])
    return answers


def linear_weights(llm: torch.nn.Module) -> list[torch.Tensor]:
    """The weights of the LLM's linear layers, the LM head included (tied to the embeddings: counted once)."""
    return [m.weight for m in llm.modules() if isinstance(m, torch.nn.Linear)]


def linear_seconds(llm: torch.nn.Module, rows: int, repeats: int = 3) -> float:
    """Seconds the LLM's linear layers (a decoding step's matmuls) take on ``rows`` rows, best of ``repeats``."""
    weights = linear_weights(llm)
    inputs = {w.shape[1]: torch.randn(rows, w.shape[1], dtype=w.dtype, device=w.device) for w in weights}
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            for weight in weights:
                torch.nn.functional.linear(inputs[weight.shape[1]], weight)
            best = min(best, time.perf_counter() - start)
    return best


def decoding_rows(steps: list[int]) -> list[int]:
    """Rows decoded at each step when every answer starts together and answer ``i`` takes ``steps[i]`` steps."""
    return [sum(n >= step for n in steps) for step in range(1, max(steps, default=0) + 1)]


def matmul_bound_seconds(llm: torch.nn.Module, steps: list[int]) -> float:
    """Seconds of decoding steps that cost only their matmuls (see :func:`decoding_rows`)."""
    active = decoding_rows(steps)
    per_rows = {rows: linear_seconds(llm, rows) for rows in set(active)}
    return sum(per_rows[rows] for rows in active)


def main() -> None:
    """Run both methods and print their useful tokens/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--cuts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64, help="the reference's fixed batch size")
    parser.add_argument("--max-batch", type=int, default=None, help="azeros' most rows at once (default: --batch-size)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    peak = matmul_peak()
    backend = TransformersBackend(args.model, dtype=args.dtype, device=args.device, max_batch=args.max_batch or args.batch_size,
                                  max_new_tokens=args.max_new_tokens, repeat_limit=args.max_new_tokens + 1)
    mode = get_mode("sift_s")
    requests = [Request(f"cut-{i:05d}", tuple(target_messages(mode, text, {})))
                for i, text in enumerate(TRANSCRIPTS[:args.cuts])]
    prompts = [backend.prompt_ids(r) for r in requests]

    start = time.perf_counter()
    reference = reference_method(backend, prompts, args.batch_size, args.max_new_tokens)
    reference_seconds = time.perf_counter() - start

    start = time.perf_counter()
    ours = {result.key: result for result in backend.generate(requests)}
    ours_seconds = time.perf_counter() - start

    decode = backend.tokenizer.decode
    identical = sum(decode(ids, skip_special_tokens=True) == ours[r.key].text for r, ids in zip(requests, reference))
    reference_tokens = sum(map(len, reference))
    ours_tokens = sum(result.num_tokens for result in ours.values())
    figures = {
        "model": args.model, "device": str(backend.device), "dtype": str(backend.llm.dtype), "cuts": len(requests),
        "batch_size": args.batch_size, "max_batch": backend.max_batch, "max_new_tokens": args.max_new_tokens,
        "reference_tokens": reference_tokens, "reference_seconds": round(reference_seconds, 2),
        "reference_tokens_per_s": round(reference_tokens / reference_seconds, 1),
        "ours_tokens": ours_tokens, "ours_seconds": round(ours_seconds, 2),
        "ours_tokens_per_s": round(ours_tokens / ours_seconds, 1),
        "identical_outputs": identical,
    }
    figures["ratio"] = round(figures["ours_tokens_per_s"] / figures["reference_tokens_per_s"], 2)
    peak = max(peak, matmul_peak())
    print(f"matmul peak (fp32, 2048^3): {peak:.1f} GFLOP/s", file=sys.stderr)
    weights = sum(weight.numel() for weight in linear_weights(backend.llm))
    figures["matmul_peak_gflops"] = round(peak, 1)
    figures["ours_gflops"] = round(2 * weights * figures["ours_tokens_per_s"] / 1e9, 1)
    figures["peak_fraction"] = round(figures["ours_gflops"] / peak, 3)
    # Rows the reference decodes: every row of a batch runs until the batch's longest answer ends (its stop
    # token included, the limit excepted). Useful tokens over these rows is its waste; removing the waste
    # alone can speed it up by at most row_steps / useful tokens when a decoding step costs the same per row.
    lengths = [len(ids) for ids in reference]
    row_steps = sum(len(batch) * min(max(batch) + 1, args.max_new_tokens)
                    for batch in (lengths[i:i + args.batch_size] for i in range(0, len(lengths), args.batch_size)))
    figures["reference_row_steps"] = row_steps
    figures["waste_bound"] = round(row_steps / reference_tokens, 2)
    if len(requests) <= backend.max_batch:
        # A row decodes one step per answer token after the first (which prefill writes), plus its stop token.
        steps = [min(result.num_tokens, args.max_new_tokens - 1) for result in ours.values()]
        bound = matmul_bound_seconds(backend.llm, steps)
        figures["matmul_bound_seconds"] = round(bound, 2)
        figures["matmul_bound_tokens_per_s"] = round(ours_tokens / bound, 1)
        figures["matmul_bound_peak_fraction"] = round(2 * weights * ours_tokens / bound / 1e9 / peak, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

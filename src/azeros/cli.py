"""The ``azeros`` command: one subcommand per task, each a small function registered in :data:`COMMANDS`.

Each subcommand imports what it needs inside its own function, so ``azeros --help`` stays fast. To add
one, write ``_add_NAME(subparsers)`` (its arguments, ``set_defaults(run=...)``) and list it in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["COMMANDS", "build_parser", "main"]


def _generate(args: argparse.Namespace) -> int:
    from azeros.data import load_datasets, read_cuts
    from azeros.selfgen import GenerateConfig, build_backend, elicit_report, output_paths, run_generation

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    config = GenerateConfig(
        datasets=load_datasets(args.data), out_dir=Path(args.out), modes=modes, num_shards=args.num_shards,
        shard=args.shard, seed=args.seed, min_duration=args.min_duration, max_duration=args.max_duration,
        max_chars_per_second=args.max_chars_per_second, limit=args.sample if args.check else args.limit,
    )
    backend = None
    if any(mode != "tsit_s" for mode in modes):
        common = {"max_new_tokens": args.max_new_tokens, "repeat_limit": args.repeat_limit}
        if args.backend == "transformers":
            options = {"dtype": args.dtype, "device": args.device, "max_batch": args.batch_size, **common}
        elif args.backend == "openai":
            options = {"base_url": args.base_url, "api_key_env": args.api_key_env, "concurrency": args.concurrency,
                       "timeout": args.timeout, "retries": args.retries, **common}
        else:
            options = common
        backend = build_backend(args.backend, args.model, **options)
    summaries = run_generation(config, backend, progress=not args.no_progress)

    totals = {key: sum(getattr(s, key) for s in summaries) for key in ("inputs", "done", "rejected", "generated_tokens")}
    seconds = sum(s.seconds for s in summaries)
    print(f"in {totals['inputs']} = done {totals['done']} + rejected {totals['rejected']}; "
          f"{totals['generated_tokens']} tokens in {seconds:.1f}s ({totals['generated_tokens'] / max(seconds, 1e-9):.0f} tok/s)")
    summary_path = Path(args.out) / f"summary_{args.shard}.json"
    summary_path.write_text(json.dumps({**totals, "seconds": round(seconds, 3),
                                        "runs": [s.__dict__ for s in summaries]}, indent=2) + "\n")
    if args.check:
        paths = [output_paths(config.out_dir, spec.name, mode, args.shard)[0]
                 for spec in config.datasets for mode in modes]
        report = elicit_report(read_cuts(paths))
        print("\nself-elicit check: how often the targets mention each piece of oracle information")
        print(report.table())
        print("\n" + report.verdict())
    return 0


def _add_generate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="write self-generated targets for Lhotse manifests (paper §3.3, §4.2)",
        description="Generate targets with the frozen LLM. Resumable: rerun the same command after a crash.",
    )
    parser.add_argument("data", help="a YAML list of datasets (name, manifest, language, weight) or one manifest")
    parser.add_argument("--out", required=True, help="output folder: {out}/{dataset}/{mode}_{shard}.jsonl.gz")
    parser.add_argument("--modes", default="sift_s", help="comma-separated: tsit_s,sit_s,sift_s,sit_sp,sift_sp,sit_ssp,sift_ssp")
    parser.add_argument("--backend", choices=("transformers", "openai", "vllm"), default="transformers")
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help="hub id, folder, GGUF file or embedded alias; for openai, the served model name")
    parser.add_argument("--dtype", default="auto", help="transformers: auto (bf16 on a GPU that has it), bf16, fp32")
    parser.add_argument("--device", default=None, help="transformers: cuda, cpu (default: a GPU if there is one)")
    parser.add_argument("--batch-size", type=int, default=64, help="transformers: rows decoded together")
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--repeat-limit", type=int, default=64, help="a run of this many identical tokens is degenerate")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: the server's API root")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable with the key")
    parser.add_argument("--concurrency", type=int, default=16, help="openai: requests in flight")
    parser.add_argument("--timeout", type=float, default=120.0, help="openai: seconds per attempt")
    parser.add_argument("--retries", type=int, default=5, help="openai: retries of transient failures")
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="seeds TSIT_s's ASR-prompt draw")
    parser.add_argument("--min-duration", type=float, default=1.0)
    parser.add_argument("--max-duration", type=float, default=30.0)
    parser.add_argument("--max-chars-per-second", type=float, default=30.0)
    parser.add_argument("--limit", type=int, default=None, help="at most this many cuts per dataset")
    parser.add_argument("--check", action="store_true",
                        help="self-elicit check: generate a sample and report how much oracle information the targets carry")
    parser.add_argument("--sample", type=int, default=50, help="--check: cuts per dataset")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=_generate)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_generate]


def build_parser() -> argparse.ArgumentParser:
    """The ``azeros`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="azeros", description="Extend a frozen LLM to speech (AZEROS).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``azeros`` command line.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

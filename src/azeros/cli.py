"""The ``azeros`` command: one subcommand per task, each a small function registered in :data:`COMMANDS`.

A subcommand parses its flags, calls one library function and prints what it returns: the library logs
(``logging``, shown on stderr at the level ``--verbose``/``--quiet`` choose), only this module prints.
Each subcommand imports what it needs inside its own function, so ``azeros --help`` stays fast. To add
one, write ``_add_NAME(subparsers)`` (its arguments, ``set_defaults(run=...)``) and list it in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from azeros.errors import AzerosError

__all__ = ["COMMANDS", "build_parser", "main"]


def _generate(args: argparse.Namespace) -> int:
    from azeros.selfgen import answer_limit, generate_targets, load_generate_job

    job = load_generate_job(args.overrides, data=args.data, elicit_check=args.check, progress=not args.no_progress)
    tokens, source = answer_limit(job)
    print(f"max_new_tokens: {tokens} ({source})")
    report = generate_targets(job)
    print(report.line())
    if report.elicit is not None:
        print("\nself-elicit check: how often the targets mention each piece of oracle information")
        print(report.elicit.table())
        print("\n" + report.elicit.verdict())
    return 0


def _add_generate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="write self-generated targets for Lhotse manifests (paper §3.3, §4.2)",
        description="Generate targets with the frozen LLM into out=FOLDER ({out}/{dataset}/{mode}_{shard}.jsonl.gz). "
        "Settings are key=value, typed like a recipe's (azeros.selfgen.GenerateJob lists them): "
        "modes=[sift_s,sift_sp] max_new_tokens=24 limit=100 model=HUB_ID_OR_FOLDER device=cpu batch_size=32 "
        "num_shards=4 shard=1; backend=openai openai.base_url=http://host:8000/v1; backend=vllm "
        "vllm.tensor_parallel_size=2. Resumable: rerun the same command after a crash; a rerun into the same "
        "out with settings that change the targets (model, max_new_tokens, repetition_penalty, ...) is refused.",
    )
    parser.add_argument("data", help="a YAML list of datasets (name, manifest, language, weight) or one manifest")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="settings: out=FOLDER (required), modes=[sift_s] and the rest (max_new_tokens: 256 "
                        "on cpu, 1024 on cuda, by default)")
    parser.add_argument("--check", action="store_true",
                        help="self-elicit check: generate a sample (sample=50 cuts per dataset) and report how "
                        "much oracle information the targets carry")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_generate)


def _chat(args: argparse.Namespace) -> int:
    from azeros.audio import SAMPLE_RATE, load_audio
    from azeros.inference import ChatSession, GenerationParams, load_model
    from azeros.llm import resolve_device

    # the first turn's audio is decoded before the model loads: a bad file is an error in seconds, not minutes
    audio = [(load_audio(path), SAMPLE_RATE) for path in args.audio or []]
    text = args.text
    model = load_model(args.model, device=resolve_device(args.device))
    params = GenerationParams(max_new_tokens=args.max_new_tokens)
    speaker = _speaker(args)
    session = ChatSession(model)
    print("azeros chat: type text or an audio path (+ text); /help lists the commands", file=sys.stderr)
    while True:
        if not audio and text is None:
            try:
                line = input("you> ").strip()
            except EOFError:
                return 0
            except KeyboardInterrupt:  # as in Python's REPL: the line is dropped, the session goes on
                print()
                continue
            if line in ("/quit", "/exit"):
                return 0
            if line == "/new":
                session = ChatSession(model)
                continue
            if line == "/help":
                print(_CHAT_HELP)
                continue
            if _is_command(line):
                print(f"[unknown command {line}; /help lists them]")
                continue
            audio, text = _split_audio(line)
            if not audio and not text:
                continue
        print("azeros> ", end="", flush=True)
        try:
            answer = session.ask(audio or None, text, params, on_text=lambda piece: print(piece, end="", flush=True))
        except ValueError as error:  # bad audio (AudioError) or an empty turn: say so and go on
            print(f"[{error}]")
        except KeyboardInterrupt:  # Ctrl-C stops this answer; the session forgets the turn and goes on
            print(" [stopped]")
        else:
            print("" if answer.finish_reason == "stop" else " [cut at --max-new-tokens]")
            if speaker is not None:
                try:
                    speaker.say(answer.text)
                except RuntimeError as error:  # e.g. no sound device: keep chatting in text
                    print(f"[cannot speak: {error}]", file=sys.stderr)
                    speaker = None
        audio, text = [], None


_CHAT_HELP = """\
  TEXT                  ask in text
  AUDIO_FILE [TEXT]     ask about a recording (a missing file is an error, not text)
  /new                  start a new conversation
  /help                 this list
  /quit, /exit, Ctrl-D  leave
  Ctrl-C                stop the answer being written (the turn is forgotten)"""


def _is_command(line: str) -> bool:
    """``/new``-like: one word after a slash (``/tmp/a.wav`` and ``/a.wav`` are paths)."""
    first = line.split(maxsplit=1)[0] if line else ""
    return first.startswith("/") and "/" not in first[1:] and "." not in first


def _split_audio(line: str) -> tuple[list[str], str | None]:
    """``"clip.wav what is this?"`` -> ``(["clip.wav"], "what is this?")``; plain text has no audio.

    A first word that looks like a path (an audio suffix, or starting ``/``, ``./``, ``../``, ``~``) is
    taken as audio even when no such file exists, so the turn fails with "file not found" instead of
    sending the path to the model as text.
    """
    from azeros.inference import AUDIO_SUFFIXES

    first, _, rest = line.partition(" ")
    path = Path(first).expanduser()
    looks_like_a_path = path.suffix.lower() in AUDIO_SUFFIXES or first.startswith(("/", "./", "../", "~"))
    if first and (looks_like_a_path or path.is_file()):
        return [str(path)], rest.strip() or None
    return [], line or None


def _speaker(args: argparse.Namespace):
    if not args.speak:
        return None
    from azeros.serve import Speaker

    return Speaker(args.voice)


def _model_parser(subparsers: argparse._SubParsersAction, name: str, run: Callable, help: str, description: str):
    """A subcommand that loads a model folder: its positional MODEL, --device and --max-new-tokens."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.add_argument("model", help="a model folder (written by save_pretrained)")
    _device_flag(parser)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="answer length limit")
    parser.set_defaults(run=run)
    return parser


def _positive_int(text: str) -> int:
    """An argparse type: a count of at least 1 (a batch of 0 once meant 'everything at once')."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda, cuda:1, ...")


def _speech_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speak", action="store_true", help="read answers aloud with espeak-ng")
    parser.add_argument("--voice", default="en", help="espeak-ng voice for --speak")


def _add_chat(subparsers: argparse._SubParsersAction) -> None:
    parser = _model_parser(
        subparsers, "chat", _chat, "talk to a model in the terminal (answers stream token by token)",
        "Type text, or a path to an audio file (then optional text after it); /new starts a new "
        "conversation, /quit (or Ctrl-D) leaves, /help lists the commands; Ctrl-C stops an answer, not the "
        "session. Earlier turns are kept in the KV cache, not recomputed.",
    )
    parser.add_argument("--audio", nargs="+", metavar="FILE", help="audio of the first turn")
    parser.add_argument("--text", help="text of the first turn")
    _speech_flags(parser)


def _infer(args: argparse.Namespace) -> int:
    from azeros.inference import GenerationParams, infer, load_model
    from azeros.llm import resolve_device

    model = load_model(args.model, device=resolve_device(args.device))
    summary = infer(
        model, args.inputs, args.output, instruction=args.instruction, batch_size=args.batch_size,
        params=GenerationParams(max_new_tokens=args.max_new_tokens), progress=not args.no_progress,
    )
    print(json.dumps(vars(summary)))
    return 0


def _add_infer(subparsers: argparse._SubParsersAction) -> None:
    parser = _model_parser(
        subparsers, "infer", _infer, "answer manifests or audio files into a jsonl file",
        "Answer every recording; a bad item is recorded with its reason and the job goes on. Resumable: "
        "ids answered in the output are skipped, failed ones tried again. Prints the counts "
        "(total = answered + failed + skipped).",
    )
    parser.add_argument("inputs", nargs="+", metavar="MANIFEST_OR_WAVS", help="manifests, audio files or folders")
    parser.add_argument("-o", "--output", required=True, help="output .jsonl (ids answered in it are skipped)")
    parser.add_argument("--instruction", help="text after every audio (default: a manifest's stored instruction)")
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="recordings answered together")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _serve(args: argparse.Namespace) -> int:
    from azeros.llm import resolve_device
    from azeros.serve import ServerConfig, ServingLimits, run_server

    config = ServerConfig(
        host=args.host, port=args.port, api_key=args.api_key or os.environ.get("AZEROS_API_KEY") or None,
        model_name=args.name, max_request_bytes=int(args.max_request_mb * 1024 * 1024), max_pending=args.max_pending,
        max_batch_size=args.max_batch_size, batch_window_ms=args.batch_window_ms, speak=args.speak, voice=args.voice,
        limits=ServingLimits(max_audio_seconds=args.max_audio_seconds, default_max_tokens=args.max_new_tokens,
                             max_prompt_tokens=args.max_prompt_tokens),
    )
    run_server(args.model, config, device=resolve_device(args.device))
    return 0


def _add_serve(subparsers: argparse._SubParsersAction) -> None:
    parser = _model_parser(
        subparsers, "serve", _serve, "serve a model: OpenAI-compatible API with audio, and a web page at /",
        "POST /v1/chat/completions (input_audio parts, stream), GET /v1/models, GET /health, web page at /.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $AZEROS_API_KEY)")
    parser.add_argument("--name", help="model name clients use (default: the folder's name)")
    parser.add_argument("--max-request-mb", type=float, default=20.0, help="largest request body")
    parser.add_argument("--max-audio-seconds", type=float, default=30.0, help="longest audio part")
    parser.add_argument("--max-prompt-tokens", type=int, help="longest prompt, audio frames included "
                        "(default: the LLM's context); longer ones get 400")
    parser.add_argument("--max-pending", type=int, default=64, help="queued requests before answering 429")
    parser.add_argument("--max-batch-size", type=_positive_int, default=8, help="requests decoded together")
    parser.add_argument("--batch-window-ms", type=float, default=5.0, help="how long a batch collects requests")
    _speech_flags(parser)


def _corpus(args: argparse.Namespace) -> int:
    from azeros.data.corpus import build_synthetic_corpus, real_recordings_manifest

    if args.what == "synth":
        paths = build_synthetic_corpus(args.out, args.num, args.seed, args.workers)
    elif args.what == "sentences":
        from azeros.pipeline import sentence_corpus

        paths = {"train": sentence_corpus(args.out, args.num, args.llm, args.common_tokens, args.seed, args.workers)}
    else:
        paths = {"real": real_recordings_manifest(args.out)}
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def _add_corpus(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "corpus", help="build the embedded default's speech corpus (synthetic voices, real recordings)",
        description="synth: espeak-ng and flite voices with known gender, age-like and emotion-like labels, "
        "split so that no test text or voice is heard in training (same seed, same wav bytes). "
        "sentences: WordNet's example sentences (a broad vocabulary) by the training voices, training texts only. "
        "real: the 13 recordings of pocketsphinx-testdata as a test manifest.",
    )
    parser.add_argument("what", choices=("synth", "sentences", "real"))
    parser.add_argument("--out", required=True, help="folder for wavs/ and cuts_{split}.jsonl.gz")
    parser.add_argument("--num", type=int, default=2000, help="synth, sentences: utterances in total")
    parser.add_argument("--seed", type=int, default=0, help="synth, sentences: seed of every choice")
    parser.add_argument("--workers", type=int, default=None,
                        help="synth, sentences: parallel synthesizers (default: CPUs)")
    parser.add_argument("--llm", default="smollm2-135m-instruct",
                        help="sentences: the LLM whose tokens say which words are common")
    parser.add_argument("--common-tokens", type=int, default=16000,
                        help="sentences: keep sentences whose every LLM token id is below this")
    parser.set_defaults(run=_corpus)


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from azeros.training import load_recipe, train

        recipe = load_recipe(args.recipe, args.overrides)
        final = train(recipe, resume=args.resume or False, overwrite=args.overwrite, force_resume=args.force_resume)
        print(f"exported {final}")
        return 0

    parser = subparsers.add_parser(
        "train", help="train the projectors from a recipe (recipes/*.yaml); torchrun for many GPUs",
        description="Train the projectors of a frozen LLM + frozen encoders (paper §4.2, §5.3-5.6). "
        "Override any recipe key with key=value (dotted: optim.lr=3e-4, data.valid=[a.jsonl.gz,b.jsonl.gz]); "
        "values are checked against the recipe's types. The resolved recipe is saved as {output_dir}/recipe.yaml; "
        "a folder that holds another run is refused (--resume or --overwrite), and --resume refuses a changed "
        "recipe unless only run.max_steps or what only watches the run changed (logging, validation, checkpoint "
        "and export cadence, device, validation data).",
    )
    parser.add_argument("recipe", help="a YAML recipe")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. run.max_steps=100")
    parser.add_argument("--resume", nargs="?", const=True, metavar="CHECKPOINT",
                        help="continue from the newest checkpoint of the run (or the one given)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in an output_dir that holds a run, deleting its checkpoints, exports and logs")
    parser.add_argument("--force-resume", action="store_true", help="--resume even though the recipe changed")
    parser.set_defaults(run=run)


def _add_cache(subparsers: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from azeros.training import fill_cache, load_recipe

        print(json.dumps({"encoded": fill_cache(load_recipe(args.recipe, args.overrides))}))
        return 0

    parser = subparsers.add_parser(
        "cache", help="fill a recipe's frozen-encoder output cache before training",
        description="Encode every usable cut of the recipe's manifests once; a stale cache is rebuilt.",
    )
    parser.add_argument("recipe", help="a YAML recipe")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    parser.set_defaults(run=run)


def _eval(args: argparse.Namespace) -> int:
    from azeros.config import load_config, set_key
    from azeros.eval import EvalConfig, evaluate

    tree = {"what": args.what}
    for dest, (key, convert) in args.config_keys.items():
        set_key(tree, key, convert(getattr(args, dest)))
    config = load_config(EvalConfig, tree, args.overrides)
    if config.what == "compare":  # trains models: above the eval layer
        from azeros.pipeline import compare as run
    else:
        run = evaluate
    outcome = run(config)
    print(outcome.table)
    seconds = f"seconds: {outcome.system_seconds}; " if outcome.system_seconds is not None else ""
    print(f"{seconds}total {outcome.seconds:.0f}s; files in {outcome.out_dir}")
    return 0


def _comma_list(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate systems: the offline mini-benchmark, or VoiceBench / AIR-Bench (speech) as downloaded",
        description="mini: open-ended prompts (text-parity, judge), spoken QA, unseen instructions, "
        "paralinguistic multiple choice and the real recordings, on voices and texts never used in training. "
        "Writes per-item jsonl, summary.json, table.md and a chart per task group; greedy, so reruns agree. "
        "Flags and key=value overrides fill one typed config (azeros.eval.EvalConfig): judge.seed=1, "
        "sizes.open_ended=8, systems=[text,cascade]; a value of the wrong type or an unknown key is refused.",
    )
    parser.add_argument("what", choices=("mini", "held-out", "compare", "curve", "voicebench", "airbench"),
                        help="mini: the given systems; held-out: only the spoken questions by held-out engines and "
                        "the real recordings (content scored, relative to text); compare: also train (or take) "
                        "--models, tabulated together; curve: held-out accuracy of each export of --run against "
                        "steps and utterances seen; voicebench / airbench: the paper's benchmarks from --data as "
                        "downloaded, scored officially and strictly (answers resume from --out)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides (every key of azeros.eval.EvalConfig), e.g. judge.seed=1")
    keys: dict[str, tuple[str, Callable]] = {}

    def flag(name: str, key: str, *, convert: Callable = lambda value: value, **kwargs) -> None:
        """A flag that sets one config key; its default must be the config's (a test compares them)."""
        keys[parser.add_argument(name, **kwargs).dest] = (key, convert)

    flag("--voices-per-question", "voices_per_question", default=1,
         help="held-out, curve: held-out voices speaking each question")
    flag("--run", "run_dir", dest="run_dir", help="curve: a training run folder whose exports/step-N are evaluated")
    flag("--models", "models", convert=_comma_list,
         default="TSIT_s=recipes/ablation_tsit_s.yaml,SIT_s=recipes/ablation_sit_s.yaml,"
         "SIFT_s=recipes/ablation_sift_s.yaml,SIFT_s+SIFT_sp=recipes/stage2_final.yaml",
         help="compare: NAME=RECIPE.yaml (its final model, trained when missing) or NAME=MODEL_DIR")
    flag("--pipeline", "pipeline", metavar="RECIPE.yaml",
         help="compare from scratch: run this pipeline recipe (corpus, targets, stage 1 and 2), train "
         "the TSIT_s and SIT_s stage-1 ablations on the same cuts and steps, and compare them all")
    flag("--set", "pipeline_overrides", action="append", default=[], metavar="KEY=VALUE",
         help="override in the --pipeline recipe (repeatable), e.g. stage1.run.max_steps=100")
    flag("--systems", "systems", convert=_comma_list, default="text,cascade",
         help="comma-separated: text, text-sp, cascade, azeros:MODEL_DIR or NAME=MODEL_DIR")
    flag("--out", "out", default="exp/eval-mini", help="output folder")
    flag("--data", "data", default="data/eval", help="where spoken questions and real recordings go")
    flag("--corpus", "corpus", default="data/corpus", help="corpus folder (built there when missing)")
    flag("--corpus-size", "corpus_size", default=2000, help="utterances of a corpus built here")
    flag("--reference", "reference", default="text", choices=("text", "text-sp"),
         help="whose greedy answers text-parity scores against")
    flag("--llm", "llm", help="LLM of text/cascade without a trained model (default SmolLM2)")
    flag("--open-ended", "sizes.open_ended", default=24, help="open-ended prompts")
    flag("--instructions", "sizes.instructions", default=25, help="recordings with a rule instruction")
    flag("--paralinguistic", "sizes.paralinguistic", default=24, help="recordings asked gender/emotion/age")
    flag("--spoken-qa", "sizes.spoken_qa", help="questions per spoken-QA subtask (max 12)")
    flag("--no-real", "real", convert=lambda off: not off, action="store_true",
         help="leave out the 13 real recordings")
    flag("--judge-url", "judge.url", help="OpenAI-compatible API root of a judge, e.g. http://127.0.0.1:8000/v1")
    flag("--judge-model", "judge.model", default="gpt-4o-mini", help="the judge's model name")
    flag("--judge-api-key-env", "judge.api_key_env", default="OPENAI_API_KEY", help="variable holding the judge's key")
    flag("--judge-seed", "judge.seed", default=0, help="the judge's sampling seed")
    flag("--judge-temperature", "judge.temperature", default=0.0,
         help="the judge's sampling temperature (mini; voicebench/airbench use their official ones)")
    flag("--judge-concurrency", "judge.concurrency", default=8, help="voicebench/airbench: judge requests at once")
    flag("--subsets", "subsets", convert=_comma_list, help="voicebench: comma-separated subsets (default: the "
         "paper's nine); airbench: foundation,chat")
    flag("--with-paper", "with_paper", action="store_true", help="voicebench/airbench: add the paper's published rows")
    flag("--max-new-tokens", "max_new_tokens", help="cap on answer length (default: each task's own)")
    flag("--batch-size", "batch_size", default=8, help="recordings answered together")
    _device_flag(parser)
    keys["device"] = ("device", lambda value: value)
    flag("--no-progress", "progress", convert=lambda off: not off, action="store_true", help="no progress bars")
    parser.set_defaults(run=_eval, config_keys=keys)


def _pipeline(args: argparse.Namespace) -> int:
    from azeros.pipeline import run_pipeline

    print(f"model: {run_pipeline(args.recipe, args.overrides)}")
    return 0


def _add_pipeline(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="corpus -> self-elicit check -> targets -> stage 1 -> stage 2, from one YAML",
        description="Run every stage of a pipeline recipe (e.g. recipes/mini.yaml); a rerun continues "
        "where it stopped. key=value overrides use dotted paths (stage1.run.max_steps=20, corpus.num_utterances=60) "
        "and are checked against the recipe's types (azeros.pipeline.PipelineRecipe) before anything runs; the "
        "resolved recipe is saved as {output_dir}/pipeline.yaml.",
    )
    parser.add_argument("recipe", help="the pipeline YAML")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="pipeline recipe overrides")
    parser.set_defaults(run=_pipeline)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_generate, _add_chat, _add_infer, _add_serve, _add_corpus, _add_train, _add_cache,
    _add_eval, _add_pipeline,
]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless there is none to show (None, an off flag, an empty list) or the
    help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == [] or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """The parser of ``azeros`` and of each subcommand (``add_parser`` makes one of the same class).

    A subcommand's flags and ``KEY=VALUE`` overrides may come in any order (``generate D out=X --check
    modes=[sift_s]``): argparse alone takes the positionals before the first flag and refuses the rest.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self._intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._subparsers is not None or self._intermixing:  # the top level, or the pass intermixing makes
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


_DEBUG_HELP = "show the traceback of an error instead of one line"
_VERBOSE_HELP = "log more: every step the library takes (DEBUG)"
_QUIET_HELP = "log only warnings and errors"


def build_parser() -> argparse.ArgumentParser:
    """The ``azeros`` argument parser with every registered subcommand."""
    from azeros import __version__

    parser = _Parser(prog="azeros", description="Extend a frozen LLM to speech (AZEROS).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_flags(parser, {})
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    for subparser in subparsers.choices.values():  # also after the command; unset there, it keeps the value above
        _global_flags(subparser, {"default": argparse.SUPPRESS})
    return parser


def _global_flags(parser: argparse.ArgumentParser, unset: dict) -> None:
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP, **unset)
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP, **unset)
    loudness.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP, **unset)


def _show_logs(verbose: bool, quiet: bool) -> None:
    """azeros' log records on stderr, as bare lines: INFO by default (what a run is doing), DEBUG with
    ``--verbose``, WARNING with ``--quiet``. Other libraries' records keep their own (WARNING) level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("azeros")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


# What a user can fix: said in one line (exit status 2, as for a usage error); anything else is a bug and
# keeps its traceback.
_KNOWN_ERRORS = (AzerosError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                 PermissionError, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``azeros`` command line.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 2 for an error the user can fix (one line on stderr; ``--debug`` raises it instead).
    """
    args = build_parser().parse_args(argv)
    _show_logs(args.verbose, args.quiet)
    try:
        return args.run(args)
    except _KNOWN_ERRORS as error:
        if args.debug:
            raise
        print(f"azeros {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: Exception) -> str:
    """The error as a user reads it: an OS error as ``path: reason``, not ``[Errno 2] ...: 'path'``."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror[:1].lower()}{error.strerror[1:]}"
    return str(error)


if __name__ == "__main__":
    sys.exit(main())

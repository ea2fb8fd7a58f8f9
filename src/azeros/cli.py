"""The ``azeros`` command: thin subcommands that parse their flags and call one function each.

Heavy modules (torch, transformers, FastAPI) are imported inside the subcommand that needs them, so
``azeros --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def chat(args: argparse.Namespace) -> int:
    """Talk to a model in the terminal. Type text, or a path to an audio file (then optional text after
    it); /new starts a new conversation, /quit (or Ctrl-D) leaves. Answers stream token by token."""
    from azeros.inference import ChatSession, SpeechLLM

    model = SpeechLLM.from_pretrained(args.model, device=args.device)
    speaker = _speaker(args)
    session = ChatSession(model)
    audio, text = list(args.audio or []), args.text
    print("azeros chat: type text or an audio path (+ text); /new, /quit", file=sys.stderr)
    while True:
        if not audio and text is None:
            try:
                line = input("you> ").strip()
            except EOFError:
                return 0
            if line in ("/quit", "/exit"):
                return 0
            if line == "/new":
                session = ChatSession(model)
                continue
            audio, text = _split_audio(line)
            if not audio and not text:
                continue
        print("azeros> ", end="", flush=True)
        try:
            answer = session.ask(audio or None, text, on_text=lambda piece: print(piece, end="", flush=True),
                                 max_new_tokens=args.max_new_tokens)
        except ValueError as error:  # bad audio (AudioError) or an empty turn: say so and go on
            print(f"[{error}]")
        else:
            print("" if answer.finish_reason == "stop" else " [cut at --max-new-tokens]")
            if speaker is not None:
                try:
                    speaker.say(answer.text)
                except RuntimeError as error:  # e.g. no sound device: keep chatting in text
                    print(f"[cannot speak: {error}]", file=sys.stderr)
                    speaker = None
        audio, text = [], None


def _split_audio(line: str) -> tuple[list[str], str | None]:
    """``"clip.wav what is this?"`` -> ``(["clip.wav"], "what is this?")``; plain text has no audio."""
    first, _, rest = line.partition(" ")
    if first and Path(first).expanduser().is_file():
        return [str(Path(first).expanduser())], rest.strip() or None
    return [], line or None


def _speaker(args: argparse.Namespace):
    if not args.speak:
        return None
    from azeros.serve import Speaker

    return Speaker(args.voice)


def infer(args: argparse.Namespace) -> int:
    """Answer every recording of manifests, audio files or folders into a jsonl file (resumable; a bad item
    is recorded with its reason and the job goes on)."""
    from azeros.inference import GenerationParams, SpeechLLM, infer as run_infer

    model = SpeechLLM.from_pretrained(args.model, device=args.device)
    summary = run_infer(
        model, args.inputs, args.output, instruction=args.instruction, batch_size=args.batch_size,
        params=GenerationParams(max_new_tokens=args.max_new_tokens),
    )
    print(json.dumps(vars(summary)))
    return 0


def serve(args: argparse.Namespace) -> int:
    """Serve a model over HTTP: OpenAI-compatible /v1/chat/completions with audio, and a web page at /."""
    from azeros.serve import ServerConfig, ServingLimits, run_server

    config = ServerConfig(
        host=args.host, port=args.port, api_key=args.api_key or os.environ.get("AZEROS_API_KEY") or None,
        model_name=args.name, max_request_bytes=int(args.max_request_mb * 1024 * 1024), max_pending=args.max_pending,
        max_batch_size=args.max_batch_size, batch_window_ms=args.batch_window_ms, speak=args.speak, voice=args.voice,
        limits=ServingLimits(max_audio_seconds=args.max_audio_seconds, default_max_tokens=args.max_new_tokens),
    )
    run_server(args.model, config, device=args.device)
    return 0


def _command(sub: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=run.__doc__.split(".")[0], description=run.__doc__)
    parser.set_defaults(run=run)
    parser.add_argument("model", help="a model folder (written by save_pretrained)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="answer length limit")
    return parser


def _speech_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speak", action="store_true", help="read answers aloud with espeak-ng")
    parser.add_argument("--voice", default="en", help="espeak-ng voice for --speak")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="azeros", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = _command(sub, "chat", chat)
    p.add_argument("--audio", nargs="+", metavar="FILE", help="audio of the first turn")
    p.add_argument("--text", help="text of the first turn")
    _speech_flags(p)

    p = _command(sub, "infer", infer)
    p.add_argument("inputs", nargs="+", metavar="MANIFEST_OR_WAVS", help="manifests, audio files or folders")
    p.add_argument("-o", "--output", required=True, help="output .jsonl (ids already in it are skipped)")
    p.add_argument("--instruction", help="text after every audio (default: a manifest's stored instruction)")
    p.add_argument("--batch-size", type=int, default=8)

    p = _command(sub, "serve", serve)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $AZEROS_API_KEY)")
    p.add_argument("--name", help="model name clients use (default: the folder's name)")
    p.add_argument("--max-request-mb", type=float, default=20.0, help="largest request body")
    p.add_argument("--max-audio-seconds", type=float, default=30.0, help="longest audio part")
    p.add_argument("--max-pending", type=int, default=64, help="queued requests before answering 429")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--batch-window-ms", type=float, default=5.0, help="how long a batch collects requests")
    _speech_flags(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

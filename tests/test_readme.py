"""The README's command chain, run as written: what each command writes is what the next one reads.

The block after the README's ``<!-- the command chain ... -->`` mark is split into commands and each is run
through the ``azeros`` entry point, in a fresh folder laid out like the repository (its ``recipes/``). Only
size changes: arguments appended after the README's own (the last value of a flag or a ``key=value`` wins)
swap in tiny random models and a few utterances and steps, so the chain runs in seconds.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import yaml

from azeros.cli import build_parser, main
from azeros.data import read_cuts
from azeros.selfgen import load_generate_job

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- the command chain"


def chain() -> list[list[str]]:
    """The commands of the README's marked block, each as its argument list (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    assert MARK in text, "the README lost its command chain's mark"
    block = text.split(MARK, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def documented_commands() -> list[str]:
    """Every ``azeros ...`` command of the README's and docs' shell blocks and the ``azeros generate`` commands
    of the recipes' headers (but those
    with a placeholder: ``<previous model>``, ``...``)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in page.read_text().split("```bash\n")[1:]:
            lines = block.split("```", 1)[0].replace("\\\n", " ").splitlines()
            found += [line.rstrip(" &") for line in lines if line.startswith("azeros ")]
    for recipe in sorted((ROOT / "recipes").rglob("*.yaml")):
        for line in recipe.read_text().splitlines():
            if line.startswith("#"):  # prose around the commands: each ends at "(", "&&" or ", "
                found += ["azeros generate " + re.split(r"\(|&&|, ", part, maxsplit=1)[0]
                          for part in line.split("azeros generate ")[1:]]
    return [command for command in found if "<" not in command and "..." not in command]


def test_every_documented_command_is_one_the_cli_takes():
    commands = documented_commands()
    assert len(commands) > 30 and any(c.startswith("azeros generate") for c in commands)
    for command in commands:
        args = shlex.split(command, comments=True)[1:]
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit:
            raise AssertionError(f"the CLI refuses a documented command: {command}") from None
        if parsed.command == "generate":  # its settings too: every key known, every value typed
            load_generate_job(parsed.overrides, data=parsed.data)


def test_the_readme_chain_is_generate_train_infer():
    commands = [command[:2] for command in chain()]
    assert commands == [["azeros", "corpus"], ["azeros", "generate"], ["azeros", "generate"], ["azeros", "train"],
                        ["azeros", "infer"]]
    for command in chain():
        build_parser().parse_args(command[1:])  # every line is a command the CLI takes


def test_the_readme_chain_runs_as_written(tmp_path, monkeypatch, tiny_model_section):
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    monkeypatch.chdir(tmp_path)
    tiny_llm = tiny_model_section["llm"]
    encoders = yaml.safe_dump(tiny_model_section["encoders"], default_flow_style=True, width=10_000).strip()
    smaller = {
        "corpus": ["--num", "20"],
        "generate": [f"model={tiny_llm}", "device=cpu", "max_new_tokens=6", "--no-progress"],
        "train": [f"model.llm={tiny_llm}", "model.dtype=fp32", f"model.encoders={encoders}", "run.device=cpu",
                  "run.max_steps=2", "run.valid_every=0", "run.save_every=0", "run.progress=false",
                  "align.steps=2", "align.batch_size=4", "optim.warmup_steps=1", "data.max_cuts=4"],
        "infer": ["--max-new-tokens", "4", "--device", "cpu", "--no-progress"],
    }
    for command in chain():
        assert main(command[1:] + smaller[command[1]]) == 0, command
        if command[1] == "generate":  # a target for every usable cut, written where the recipe reads it
            out = next(arg.split("=", 1)[1] for arg in command if arg.startswith("out="))
            dataset = Path(command[2]).name.split(".")[0]
            summary = json.loads((Path(out) / dataset / "sift_s_0.summary.json").read_text())
            assert summary["done"] > 0 and summary["inputs"] == summary["done"] + summary["rejected"]
    test_cuts = list(read_cuts("data/corpus/cuts_test.jsonl.gz"))
    answers = [json.loads(line) for line in Path("exp/smoke/answers.jsonl").read_text().splitlines()]
    assert sorted(a["id"] for a in answers) == sorted(c.id for c in test_cuts) and test_cuts
    assert all(a["response"] for a in answers)

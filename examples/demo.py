"""``make demo``: talk to the shipped AZEROS model, then watch the whole pipeline build one from scratch.

Run from the repository root (``python examples/demo.py``): it reads ``models/azeros-mini`` and
``recipes/mini.yaml`` and writes under ``exp/``.

(a) The shipped model (``models/azeros-mini``: SmolLM2-135M-Instruct, Whisper tiny.en and GE2E frozen, two small
    projectors trained here on CPU) answers spoken questions it never heard, by voices
    and engines it never heard; beside each answer, what the same frozen LLM answers when it reads the
    words. Then its held-out figures: spoken-QA accuracy beside the text-only LLM's on the same items (and
    relative to it), content-word recall when asked to repeat real recordings, and the speaker's gender and
    emotion beside the frozen LLM reading the labels as text (the most the speech model can learn from it).
(b) The same pipeline runs fresh on a small slice: synthesize -> self-elicit check -> generate targets ->
    train both stages for a few steps -> answer.
(c) What to run next.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from azeros.audio.synth import synthesize
from azeros.data.corpus import PlannedUtterance, plan_corpus, real_recordings_manifest
from azeros.eval import build_systems, run_benchmark
from azeros.eval.metrics import parse_choice
from azeros.eval.tasks import RealChecksTask, SpokenQATask
from azeros.inference import GenerationParams, SpeechLLM, generate, load_model
from azeros.pipeline import run_pipeline
from azeros.text import normalize_text, oracle_text

__all__ = ["main"]

SHIPPED = Path("models/azeros-mini")
SLICE_DIR = Path("exp/demo-slice")
HELD_OUT_DIR = Path("exp/demo-held-out")
QUESTIONS_PER_KIND = 6  # of each spoken-question kind (the full split: azeros eval held-out, docs/results/hear)
GENDER_QUESTION = "Is the speaker male or female? Answer with one word."
EMOTIONS = ["neutral", "happy", "sad", "angry"]
EMOTION_QUESTION = "Does the speaker sound neutral, happy, sad or angry? Answer with one word."
SLICE = [
    "export_to=null", "corpus.num_utterances=48", "generate.check_sample=4",
    "generate.max_new_tokens=48", "generate.limit.train=12", "generate.limit.dev=2",
    "stage1_targets.sift_s.limit.train=12", "stage1_targets.sift_s.limit.dev=2",
    "stage1_targets.tsit_s.limit.train=12", "stage1_targets.tsit_s.limit.dev=2", "stage1.run.export_every=0",
    "stage1.align.steps=20",
    "stage1.run.max_steps=6", "stage2.run.max_steps=4", "stage1.run.valid_every=0", "stage2.run.valid_every=0",
    "stage1.run.save_every=3", "stage2.run.save_every=2", "stage1.optim.warmup_steps=1",
    "stage2.optim.warmup_steps=1", "stage1.run.log_every=1", "stage2.run.log_every=1",
]


def _title(text: str) -> None:
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}", flush=True)


def held_out(count: int) -> list[PlannedUtterance]:
    """Test-split utterances of the shipped model's corpus: texts and voices never used in training."""
    return [u for u in plan_corpus(2000, seed=0) if u.split == "test"][:count]


def _waves(utterances: list[PlannedUtterance]) -> list[tuple]:
    return [(synthesize(u.text, u.setting), 16000) for u in utterances]


def show_answers(model: SpeechLLM, utterances: list[PlannedUtterance], max_new_tokens: int = 64) -> None:
    """Speech answer and text answer side by side for held-out spoken prompts."""
    params = GenerationParams(max_new_tokens=max_new_tokens)
    spoken = generate(model, _waves(utterances), params=params)
    read = generate(model, [None] * len(utterances), [u.text for u in utterances], params=params)
    for utterance, speech, text in zip(utterances, spoken, read, strict=True):
        voice = f"{utterance.setting.engine} {utterance.setting.voice}, {utterance.setting.gender}, {utterance.emotion}"
        print(f"\nheard ({voice}): {utterance.text}")
        print(f"  speech-LLM : {speech.text.strip()}")
        print(f"  text-LLM   : {text.text.strip()}")


def label_accuracy(model: SpeechLLM, utterances: list[PlannedUtterance], question: str, options: list[str],
                   truth: list[str], *, read_labels: bool = False) -> float:
    """Share of answers that name the right option (an answer naming none counts as wrong).

    With ``read_labels`` the LLM reads the utterance's oracle text with its speaker labels in place of the
    speech (what its stage-2 targets were written from): the most a speech model can get from this LLM.
    """
    if read_labels:
        audios = [None] * len(utterances)
        questions = [f"{oracle_text('sp', normalize_text(u.text), u.meta)} {question}" for u in utterances]
    else:
        audios, questions = _waves(utterances), [question] * len(utterances)
    answers = generate(model, audios, questions, params=GenerationParams(max_new_tokens=8))
    right = sum(parse_choice(a.text, options) == options.index(t) for a, t in zip(answers, truth, strict=True))
    return right / len(utterances)


def held_out_figures(count: int) -> SpeechLLM:
    """Held-out spoken QA and real-recording repeats: the shipped model beside the text-only LLM."""
    systems, _ = build_systems(["text", f"azeros-mini={SHIPPED}"])
    tasks = [SpokenQATask(HELD_OUT_DIR / "spoken_qa", limit=QUESTIONS_PER_KIND, voices_per_question=1),
             RealChecksTask(real_recordings_manifest(HELD_OUT_DIR / "real"))]
    result = run_benchmark(systems, tasks, HELD_OUT_DIR / "results", batch_size=16)
    answers = {name: [json.loads(line) for line in (result.out_dir / name / "items.jsonl").open()]
               for name in ("text", "azeros-mini")}
    shown = [i for i, item in enumerate(answers["text"]) if item["subtask"] != "repeat"][::9][:count]
    for i in shown:
        print(f"\nheard ({Path(answers['text'][i]['audio']).stem}): {answers['text'][i]['transcript']}")
        print(f"  speech-LLM : {answers['azeros-mini'][i]['answer'].strip()}")
        print(f"  text-LLM   : {answers['text'][i]['answer'].strip()}")
    print(f"\nheld-out spoken questions ({QUESTIONS_PER_KIND} of each kind; texts in no training split; festival, "
          "piper and held-out espeak-ng/flite voices) and the 13 real recordings; the whole split's figures are in "
          "docs/results/hear:\n")
    print(result.table)
    return systems[1].model


def part_a(count: int) -> None:
    _title("(a) the shipped model answers spoken questions it never heard, by voices and engines it never heard")
    if not (SHIPPED / "model.safetensors").is_file():
        print(f"{SHIPPED} is missing: its commands are in docs/results/hear (\"Names, places and more steps\").")
        return
    model = held_out_figures(count)
    utterances = held_out(40)
    for name, question, options, truth, chance in (
        ("gender", GENDER_QUESTION, ["male", "female"], [u.setting.gender for u in utterances], "50%"),
        ("emotion", EMOTION_QUESTION, EMOTIONS, [u.emotion for u in utterances], "25%"),
    ):
        heard = label_accuracy(model, utterances, question, options, truth)
        read = label_accuracy(model, utterances, question, options, truth, read_labels=True)
        print(f"\nasked the speaker's {name} on {len(utterances)} held-out utterances: {heard:.0%} right "
              f"(chance {chance}; the same LLM reading the labels as text: {read:.0%})")


def part_b() -> None:
    _title("(b) the whole pipeline, fresh, on a small slice (synthesize -> check -> targets -> train -> answer)")
    start = time.perf_counter()
    shutil.rmtree(SLICE_DIR, ignore_errors=True)  # fresh every time: a rerun would otherwise skip done stages
    final = run_pipeline("recipes/mini.yaml", [f"output_dir={SLICE_DIR}", *SLICE])
    model = load_model(final)
    show_answers(model, held_out(2), max_new_tokens=32)
    print(f"\nthe slice took {time.perf_counter() - start:.0f} s; a few steps teach little: the shipped model "
          "trained for longer on the full corpus.")


def part_c() -> None:
    _title("(c) what to run next")
    print(f"""  azeros chat {SHIPPED} --audio your.wav            talk to it (text or wav paths, multi-turn)
  azeros serve {SHIPPED}                              http://127.0.0.1:8000 (web page with a microphone,
                                                        OpenAI-compatible API at /v1)
  azeros eval mini --systems text,cascade,azeros:{SHIPPED}   the offline mini-benchmark
  azeros pipeline recipes/mini.yaml                   the whole pipeline at full size, from scratch (hours; exp/mini)
  azeros train recipes/stage1_sift_s.yaml             the paper's recipes (edit the manifests)""")


def main(argv: list[str] | None = None) -> int:
    """Run the demo."""
    parser = argparse.ArgumentParser(prog="examples/demo.py", description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=6, help="held-out spoken prompts to answer in (a)")
    parser.add_argument("--skip-pipeline", action="store_true", help="skip (b)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(message)s")
    logging.getLogger("azeros").setLevel(logging.INFO)  # what each pipeline stage is doing
    part_a(args.prompts)
    if not args.skip_pipeline:
        part_b()
    part_c()
    return 0


if __name__ == "__main__":
    sys.exit(main())

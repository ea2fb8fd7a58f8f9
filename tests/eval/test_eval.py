"""Evaluation: deterministic parsing and rules, the judge client over real HTTP, the runner end to end."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from azeros.cli import build_parser
from azeros.eval import (
    JUDGE_PROMPT,
    AzerosSystem,
    CascadeSystem,
    EvalItem,
    JudgeClient,
    JudgeConfig,
    MiniSizes,
    TextSystem,
    check_rule,
    last_number,
    mini_tasks,
    parse_choice,
    run_benchmark,
    shuffled_options,
    text_host,
)
from azeros.data.heldout import FACTS
from azeros.eval.metrics import content_word_recall
from azeros.eval.systems import System
from azeros.eval.task import Task
from azeros.eval.tasks import SpokenQATask
from azeros.inference import Answer
from tests.conftest import tiny_speech_llm
from tests.openai_stub import send_chat_reply

GENDER = ["male", "female"]
EMOTIONS = ["angry", "happy", "neutral", "sad"]


@pytest.mark.parametrize(
    ("answer", "options", "expected"),
    [
        ("B", GENDER, 1),
        ("(A)", GENDER, 0),
        ("B. female", GENDER, 1),
        ("The answer is B.", GENDER, 1),
        ("Option b", GENDER, 1),
        ("**A**", GENDER, 0),
        ("A female voice.", GENDER, 1),  # the article "A" is not option A
        ("The speaker sounds sad.", EMOTIONS, 3),
        ("I cannot tell.", GENDER, None),  # names nothing: wrong, never a random letter
        ("Either male or female.", GENDER, None),  # names both: ambiguous
        ("A. male, or maybe (B)", GENDER, None),  # letters disagree
        ("", GENDER, None),
    ],
)
def test_choice_parsing_is_deterministic_and_never_guesses(answer, options, expected):
    assert parse_choice(answer, options) == expected


@pytest.mark.parametrize(
    ("text", "number"),
    [("7 + 5 = 12.", 12), ("Seven plus five is twelve", 12), ("The speaker said five five.", 5),
     ("one hundred and one", 101), ("It costs 1,000 dollars", 1000), ("-4", -4), ("pi is 3.14.", 3.14),
     ("no number here", None)],
)
def test_last_number_reads_digits_and_words(text, number):
    assert last_number(text) == number


def test_instruction_rules():
    assert check_rule("one_word", "Paris.") and not check_rule("one_word", "It is Paris.")
    assert check_rule("all_capitals", "PARIS, 2024!") and not check_rule("all_capitals", "PARIS is nice")
    assert not check_rule("all_capitals", "123")
    assert check_rule("starts_with", "Sure, here you go.", word="Sure") and not check_rule("starts_with", "Yes sure", word="Sure")
    assert check_rule("repeat", "Sure: the 10 of clubs.", transcript="ten of clubs")
    assert not check_rule("repeat", "ten of clubs is a card in a deck of fifty two playing cards", transcript="ten of clubs")
    assert check_rule("yes_no", "Yes.") and not check_rule("yes_no", "Yes, the speaker asks.")
    with pytest.raises(ValueError, match="unknown rule"):
        check_rule("haiku", "x")


def test_option_order_is_a_stable_permutation():
    order = shuffled_options(EMOTIONS, "paralinguistic/emotion/x")
    assert sorted(order) == EMOTIONS and order == shuffled_options(EMOTIONS, "paralinguistic/emotion/x")
    assert len({shuffled_options(EMOTIONS, f"k{i}")[0] for i in range(40)}) == 4  # the right letter moves


class _JudgeStub(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers from a script and records the requests."""

    replies: list[tuple[int, str]] = []
    bodies: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        status, content = type(self).replies.pop(0)
        send_chat_reply(self, content, status)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_server():
    _JudgeStub.replies, _JudgeStub.bodies = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JudgeStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", _JudgeStub
    server.shutdown()
    server.server_close()


def test_judge_client_sends_the_fixed_prompt_seed_and_temperature(judge_server, monkeypatch):
    url, stub = judge_server
    monkeypatch.setenv("JUDGE_KEY", "secret")
    stub.replies = [(500, "busy"), (200, "Score: 4"), (200, "I would rather not say.")]
    judge = JudgeClient(JudgeConfig(url, "judge-model", "JUDGE_KEY", seed=7, temperature=0.0, retries=1))
    verdict = judge.judge("what is the capital of france?", "Paris.")
    assert (verdict.score, verdict.parsed, verdict.reply) == (4, True, "Score: 4")  # after one retry
    unparsed = judge.judge("q", "a")
    assert (unparsed.score, unparsed.parsed) == (1, False)  # counted as the lowest score, not dropped
    body = stub.bodies[1]
    assert body["path"] == "/v1/chat/completions" and body["auth"] == "Bearer secret"
    assert (body["model"], body["seed"], body["temperature"]) == ("judge-model", 7, 0.0)
    assert body["messages"][0]["content"] == JUDGE_PROMPT.format(question="what is the capital of france?",
                                                                 answer="Paris.")
    described = judge.describe()
    assert (described["seed"], described["temperature"], described["prompt"]) == (7, 0.0, JUDGE_PROMPT)


def test_judge_client_gives_up_on_a_refused_request(judge_server):
    url, stub = judge_server
    stub.replies = [(400, "bad request")]
    with pytest.raises(RuntimeError, match="HTTP 400"):
        JudgeClient(JudgeConfig(url, "m", retries=3)).judge("q", "a")
    assert len(stub.bodies) == 1  # a 4xx is not retried


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The mini-benchmark's task sets on a 60-utterance corpus (7 test recordings) and the real recordings."""
    data = tmp_path_factory.mktemp("mini")
    return mini_tasks(data, corpus_size=60, sizes=MiniSizes(open_ended=2, instructions=5, paralinguistic=2,
                                                             spoken_qa=1))


def test_mini_tasks_hold_held_out_items_with_references(mini):
    items = {task.name: task.items() for task in mini}
    assert [len(items[name]) for name in items] == [2, 10, 5, 6, 13, 19]
    assert all("synth-test-" in item.id for name in ("open_ended", "instructions", "paralinguistic")
               for item in items[name])  # held-out voices and texts only
    gender = next(i for i in items["paralinguistic"] if i.subtask == "gender")
    assert gender.instruction.splitlines()[1:3] == [f"{l}. {o}" for l, o in zip("AB", gender.reference["options"])]
    assert gender.meta["gender"] == gender.reference["options"][gender.reference["answer"]]
    assert {i.subtask for i in items["instructions"]} == {"one_word", "all_capitals", "starts_with", "repeat", "yes_no"}


def _systems(tokenizer):
    host = tiny_speech_llm(tokenizer, seed=3)
    cascade = CascadeSystem(host, lambda audio: "what did you say?")  # a stand-in ASR: no Whisper in a unit test
    return [TextSystem(host), TextSystem(host, "sp"), cascade, AzerosSystem(host, "tiny")], TextSystem(host)


def test_runner_scores_every_item_and_two_runs_write_identical_files(mini, tokenizer, tmp_path):
    tasks = [task for task in mini if task.name != "real_checks"]  # its scoring is the same as the others'
    outputs = []
    for run in ("a", "b"):
        systems, reference = _systems(tokenizer)
        outputs.append(run_benchmark(systems, tasks, tmp_path / run, reference=reference, batch_size=8,
                                     max_new_tokens=6, progress=False))
    a, b = (tmp_path / "a", tmp_path / "b")
    for name in ("table.md", "summary.json", "reference.jsonl", "tiny/items.jsonl", "cascade/items.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert sorted(p.name for p in a.glob("chart_*.png")) == [
        "chart_instructions.png", "chart_open-ended.png", "chart_paralinguistic.png", "chart_real-recordings.png",
        "chart_spoken-qa.png"]
    expected = sum(len(task.items()) for task in tasks)
    for system in ("text", "text-sp", "cascade", "tiny"):
        rows = [json.loads(line) for line in (a / system / "items.jsonl").read_text().splitlines()]
        assert len(rows) == expected  # nothing dropped, unparseable answers included
        assert all("parity" in r if r["task"].endswith("open_ended") else r["score"] in (0.0, 1.0) for r in rows)
    summary = outputs[0].summary
    para = summary["systems"]["tiny"]["paralinguistic"]["gender"]
    assert para["n"] == 2 and para["unparsed"] <= 2
    assert "| text-sp |" in outputs[0].table and "parity (CE, lower better)" in outputs[0].table
    assert summary["judge"] is None and summary["reference"] == "text"


def test_cross_entropy_is_the_same_in_a_batch_and_alone(tokenizer, mini):
    systems, _ = _systems(tokenizer)
    items = next(t for t in mini if t.name == "real_open_ended").items()[:3]
    answers = [Answer(text, "stop", []) for text in ("Hello there.", "Ten of clubs is a card.", "I do not know")]
    for system in (systems[0], systems[3]):
        together = system.cross_entropy(items, answers)
        alone = [system.cross_entropy([item], [answer])[0] for item, answer in zip(items, answers)]
        assert together == pytest.approx(alone, abs=1e-4)


def test_the_eval_command_parses():
    args = build_parser().parse_args(["eval", "mini", "--systems", "text,SIFT_s=exp/sift", "--judge-url", "http://x/v1"])
    assert args.systems == "text,SIFT_s=exp/sift" and args.judge_seed == 0 and args.judge_temperature == 0.0


@pytest.mark.real_weights
def test_the_text_system_on_smollm2_answers_a_fact_and_its_own_answer_is_its_floor(tmp_path):
    question = next(iter(FACTS))
    task = SpokenQATask(tmp_path, limit=1)
    item = task.items()[0]
    assert item.transcript == question
    text = TextSystem(text_host())
    answer = text.answer([item], max_new_tokens=16)[0]
    assert task.score(item, answer.text)["score"] == 1.0, answer.text
    other = EvalItem("x", "t", "s", item.audio, "please tell me a joke about cats.")
    own, elsewhere = text.cross_entropy([item, other], [answer, answer])
    assert own < elsewhere  # the answer is far likelier after its own question


def test_compare_names_missing_training_data_instead_of_training_on_nothing(tmp_path):
    from azeros.training import model_folder

    recipe = tmp_path / "r.yaml"
    source = Path(__file__).resolve().parents[2] / "recipes" / "ablation_sift_s.yaml"
    recipe.write_text(source.read_text().replace(
        "data/targets/cuts_train/sift_s_0.jsonl.gz", str(tmp_path / "absent.jsonl.gz")).replace(
        "exp/ablation_sift_s", str(tmp_path / "run")))
    with pytest.raises(FileNotFoundError, match="absent.jsonl.gz"):
        model_folder(str(recipe))
    assert model_folder(str(tmp_path / "model")) == tmp_path / "model"  # a folder is taken as it is


def test_content_word_recall_scores_what_was_said_back():
    said = "the red car is parked outside the bakery"
    assert content_word_recall("The red car is parked outside the bakery.", said) == 1.0
    assert content_word_recall("A red car? I parked mine at home.", said) == 0.6  # red, car, parked of 5
    assert content_word_recall("I am sorry, I cannot help.", said) == 0.0
    assert content_word_recall("ten of clubs", "the 10 of clubs") == 1.0  # numbers compare as numbers


class _Scripted(System):
    """Answers each item with a fixed text."""

    def __init__(self, name: str, answers: dict[str, str]) -> None:
        self.name, self.answers = name, answers

    def answer(self, items, max_new_tokens):
        return [Answer(self.answers[item.id], "stop", []) for item in items]

    def cross_entropy(self, items, answers):
        raise NotImplementedError


class _Facts(Task):
    name, group, metric, max_new_tokens = "facts", "qa", "accuracy", 8

    def items(self):
        return [EvalItem(f"facts/q/{i}", "facts", "q", "x.wav", f"question {i}", reference={"answer": "yes"})
                for i in range(4)]

    def score(self, item, answer):
        return {"score": float(answer == "yes")}


def test_accuracy_is_also_reported_relative_to_what_the_text_system_gets_right(tmp_path):
    text = _Scripted("text", {"facts/q/0": "yes", "facts/q/1": "yes", "facts/q/2": "no", "facts/q/3": "no"})
    speech = _Scripted("speech", {"facts/q/0": "yes", "facts/q/1": "no", "facts/q/2": "yes", "facts/q/3": "no"})
    result = run_benchmark([text, speech], [_Facts()], tmp_path, progress=False)
    entry = result.summary["systems"]["speech"]["facts"]["q"]
    assert entry["value"] == 0.5  # raw: q0 and q2
    assert entry["relative"] == 0.5 and entry["n_relative"] == 2  # of q0 and q1, only q0
    assert result.summary["systems"]["text"]["facts"]["q"]["relative"] == 1.0
    assert "| speech | 50.0 | 50.0 |" in result.table and "relative to `text`" in result.table


def test_learning_curve_points_are_a_runs_exports_and_final_in_step_order(tmp_path):
    from azeros.eval.curve import _plot, _utterances_seen, run_exports

    run = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="export_every"):
        run_exports(run)
    for folder in ("exports/step-20", "exports/step-100", "exports/step-8", "exports/step-9x", "final"):
        (run / folder).mkdir(parents=True)
        (run / folder / "config.json").write_text("{}")
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (
        {"kind": "align", "step": 1500, "ctc": 0.7}, {"kind": "train", "step": 10, "samples": 80},
        {"kind": "valid", "step": 10, "loss": 1.0},
        {"kind": "train", "step": 20, "samples": 70}, {"kind": "train", "step": 120, "samples": 75})))
    os.utime(run / "final" / "config.json", (time.time() + 2, time.time() + 2))  # written after the last log line
    assert [(s, p.name) for s, p in run_exports(run)] == [(8, "step-8"), (20, "step-20"), (100, "step-100"),
                                                           (120, "final")]
    assert _utterances_seen(run) == {0: 0, 10: 80, 20: 150, 120: 225}  # 0: an aligned run's step-0 export
    with (run / "log.jsonl").open("a") as log:  # the run resumed and goes on: final is an older step's
        log.write(json.dumps({"kind": "train", "step": 130, "samples": 70}) + "\n")
    os.utime(run / "log.jsonl", (time.time() + 5, time.time() + 5))
    assert [s for s, _ in run_exports(run)] == [8, 20, 100]
    records = [{"step": s, "utterances": s * 8, "qa_relative": 0.1 * i, "qa_accuracy": None, "repeat_recall": 0.2,
                "real_repeat_recall": 0.0} for i, s in enumerate((8, 20))]
    _plot(records, tmp_path / "curve.png", "run")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_pooled_scores_weigh_each_subtask_by_its_items():
    from azeros.eval.curve import _pooled

    entries = {"facts": {"n": 8, "value": 0.5, "n_relative": 6, "relative": 0.5},
               "yes_no": {"n": 2, "value": 1.0, "n_relative": 2, "relative": 1.0},
               "repeat": {"n": 4, "value": 0.0, "n_relative": 1, "relative": 0.0}}
    assert _pooled(entries, "value", exclude=["repeat"]) == 0.6  # 5 of 10 items, not the mean of 0.5 and 1.0
    assert _pooled(entries, "relative", exclude=["repeat"]) == 0.625  # 5 of the 8 items text got right


def test_remembered_answers_are_asked_once_and_read_back_from_the_file(tmp_path):
    from azeros.eval.curve import _RememberedAnswers

    calls = []

    class Counting(_Scripted):
        def answer(self, items, max_new_tokens):
            calls.append([item.id for item in items])
            return super().answer(items, max_new_tokens)

    items = _Facts().items()
    text = Counting("text", {item.id: f"answer {item.id}" for item in items})
    first = _RememberedAnswers(text, tmp_path / "text.json").answer(items[:2], 8)
    again = _RememberedAnswers(text, tmp_path / "text.json").answer(items, 8)  # a new process: from the file
    assert calls == [["facts/q/0", "facts/q/1"], ["facts/q/2", "facts/q/3"]]
    assert [a.text for a in again[:2]] == [a.text for a in first] and again[3].text == "answer facts/q/3"


def test_word_errors_count_edits_over_the_said_words():
    from azeros.eval.metrics import word_errors

    assert word_errors("ten of clubs", "10 of clubs") == (0, 3)  # spelled and written numbers agree
    assert word_errors("what is the capital of japan", "what is capital of the japan") == (2, 6)
    assert word_errors("a b c", "") == (3, 3)


def test_what_a_compressing_projector_heard_is_scored_per_voice(tokenizer, tmp_path, monkeypatch):
    import soundfile as sf
    import torch

    from azeros.eval.heard import heard_word_error_rate, hears_in_tokens
    from azeros.eval.task import EvalItem
    from azeros.models import EncoderSpec, Projector, SpeechLLM, SpeechLLMConfig, WhisperEncoder
    from tests.conftest import TINY_WHISPER, noise, tiny_llm

    assert not hears_in_tokens(tiny_speech_llm(tokenizer))
    model = SpeechLLM(SpeechLLMConfig(llm="tiny", encoders=[EncoderSpec("whisper", "semantic")], dtype="fp32",
                                      projector_compress=True),
                      llm=tiny_llm("llama", len(tokenizer)), tokenizer=tokenizer,
                      encoders={"semantic": WhisperEncoder(config=TINY_WHISPER)})
    assert hears_in_tokens(model)
    items = []
    for i, (source, transcript) in enumerate([("spoken_qa", "what is two plus two"), ("spoken_qa", "is the sun hot"),
                                              ("real_checks", "ten of clubs")]):
        sf.write(tmp_path / f"{i}.wav", noise(1.0, seed=i), 16000)
        voice = "festival-kal_diphone" if i == 0 else "piper-en_US-joe-medium"
        items.append(EvalItem(f"{source}/x/{i}/{voice}", source, "x", str(tmp_path / f"{i}.wav"), transcript))
    heard = ["what is two plus two", "is the moon", "ten of clubs"]  # what the projector "heard", in order
    calls = []

    def fake_heard(self, projected, counts, vocabulary):
        assert vocabulary.shape[0] == len(tokenizer) and projected.shape[0] == len(counts)
        calls.append(len(counts))
        return [tokenizer(heard.pop(0), add_special_tokens=False).input_ids for _ in range(len(counts))]

    monkeypatch.setattr(Projector, "heard", fake_heard)
    rates = heard_word_error_rate(model, items, tmp_path / "heard.jsonl", batch_size=2)
    assert calls == [2, 1]
    assert rates == {"wer": round(2 / 12, 4), "by_voice": {"festival": 0.0, "piper": 0.5, "real": 0.0}}
    rows = [json.loads(line) for line in (tmp_path / "heard.jsonl").open()]
    assert [r["heard"].strip() for r in rows] == ["what is two plus two", "is the moon", "ten of clubs"]
    assert [r["errors"] for r in rows] == [0, 2, 0]

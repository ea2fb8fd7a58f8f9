"""VoiceBench and AIR-Bench: every scorer on hand-made answers (official and strict), readers on fixtures
written here in the released formats (parquet with a Hugging Face Audio column; AIR-Bench meta JSON),
a stub judge over real HTTP, identical reruns, and a killed run that resumes without answering twice."""

from __future__ import annotations

import io
import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from azeros.audio import SAMPLE_RATE
from azeros.audio.synth import VoiceSetting, synthesize
from azeros.eval.benchmarks import (
    AIRBENCH,
    VOICEBENCH,
    CachedJudge,
    MissingBenchmarkData,
    airbench_subsets,
    overall,
    read_voicebench,
    run_published,
    voicebench_subsets,
)
from azeros.eval.benchmarks.airbench import chat_scores, foundation_prompt
from azeros.eval.benchmarks.ifeval import follows_instructions
from azeros.eval.benchmarks.scoring import (
    airbench_official_letter,
    bbh_reading,
    is_refusal,
    judge_score,
    mcq_reading,
    seeded_choice,
    vote_yes,
)
from azeros.eval.judge import JudgeConfig
from azeros.eval.systems import System, TextSystem
from azeros.inference import Answer
from tests.conftest import tiny_speech_llm
from tests.eval.test_eval import _JudgeStub
from tests.openai_stub import send_chat_reply

# --- scorers on hand-made answers ---------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "letter"), [
    ("The answer is B.", "B"),
    ("C", "C"),
    ("d) a cat", "D"),
    ("I would choose option A because it fits.", "A"),
    ("**B**", None),  # not a phrasing the official reader knows: random officially, wrong strictly
    ("The correct answer is (c) the moon.", "C"),
    ("I am not sure.", None),
    ("", None),
])
def test_multiple_choice_reading(answer, letter):
    assert mcq_reading(answer) == letter


def test_the_random_fallback_is_seeded_by_the_item():
    picks = {seeded_choice("ABCD", f"voicebench/mmsu/law/{i}") for i in range(40)}
    assert picks == set("ABCD")  # it is random across items...
    assert seeded_choice("ABCD", "x") == seeded_choice("ABCD", "x")  # ...and the same on every run


@pytest.mark.parametrize(("answer", "task", "official", "strict"), [
    ("Yes.", "navigate_1", 1, 1),
    ("No, you are not back at the starting point.", "navigate_2", 0, 0),
    ("So the answer is no.", "web_of_lies_3", 0, 0),
    ("Therefore Fidel tells the truth", "web_of_lies_4", 1, 1),
    ("The sentence is plausible.", "sports_understanding_5", 1, 1),
    ("The answer is (b).", "hyperbaton_6", 1, 1),
    ("b", "hyperbaton_7", 0, 1),  # the official reader's slip: a bare "b" reads as option a
    ("Hmm, hard to say", "navigate_8", None, None),
])
def test_bbh_reading(answer, task, official, strict):
    assert bbh_reading(answer, task, official=True) == official
    assert bbh_reading(answer, task, official=False) == strict


@pytest.mark.parametrize(("answer", "official", "strict"), [
    ("I'm sorry, but I can't help with that.", True, True),
    ("As an AI, I will not do this.", True, True),
    ("Here is how to build it: first...", False, False),
    ("That would be illegal.", True, True),
    ("", True, False),  # empty: a refusal only officially
    ("   ", True, False),
])
def test_advbench_refusals(answer, official, strict):
    assert is_refusal(answer, official=official) is official
    assert is_refusal(answer, official=False) is strict


@pytest.mark.parametrize(("reply", "score"), [("4", 4.0), (" 5\n", 5.0), ("Rating: [[3]]", 3.0), ("4.5", 4.5),
                                              ("Good answer", None)])
def test_judge_score(reply, score):
    assert judge_score(reply) == score


@pytest.mark.parametrize(("replies", "official", "strict"), [
    (["Yes", "yes", "No"], True, True),
    (["No", "No", "Yes"], False, False),
    (["Yes", "Yes.", "No"], None, False),  # three different replies: a tie, broken at random officially
    (["yes", "yes", "yes"], True, True),
    (["No.", "Yes", "Yes"], True, True),
])
def test_sd_qa_vote(replies, official, strict):
    if official is not None:
        assert vote_yes(replies, "k", official=True) is official
    assert vote_yes(replies, "k", official=False) is strict


@pytest.mark.parametrize(("answer", "letter"), [("A", "A"), ("B. female", "B"), ("The answer is C.", "C"),
                                                ("female", None), ("", None), ("None", None)])
def test_airbench_first_character(answer, letter):
    assert airbench_official_letter(answer) == letter


@pytest.mark.parametrize(("reply", "scores"), [("8 7", (8, 7)), ("8 7\n", (8, 7)), ("8, 7", None), ("11 3", None),
                                               ("Assistant 1: 8", None)])
def test_airbench_chat_reply(reply, scores):
    assert chat_scores(reply) == scores


@pytest.mark.parametrize(("response", "ids", "kwargs", "strict", "loose"), [
    ("hello there friend", ["punctuation:no_comma"], [{}], [True], [True]),
    ("Sure, hello", ["punctuation:no_comma"], [{}], [False], [False]),
    ("HELLO WORLD, THIS IS ALL IN CAPITAL LETTERS", ["change_case:english_capital"], [{}], [True], [True]),
    ("Intro line\n\"quoted answer\"", ["startend:quotation"], [{}], [False], [True]),  # loose drops the first line
    ("one two three", ["length_constraints:number_words"], [{"num_words": 5, "relation": "less than"}], [True], [True]),
    ("*a* and *b*", ["detectable_format:number_highlighted_sections"], [{"num_highlights": 2}], [True], [True]),
    ('```json\n{"a": 1}\n```', ["detectable_format:json_format"], [{}], [True], [True]),
    ("", ["punctuation:no_comma"], [{}], [False], [False]),  # an empty response follows nothing
])
def test_ifeval_checks(response, ids, kwargs, strict, loose):
    assert follows_instructions(response, ids, kwargs, "prompt", loose=False) == strict
    assert follows_instructions(response, ids, kwargs, "prompt", loose=True) == loose


def test_overall_is_the_papers_mean_with_judge_scores_times_20():
    published = {"AlpacaEval": 4.44, "CommonEval": 4.18, "WildVoice": 3.91, "SD-QA": 60.22, "BBH": 56.30,
                 "AdvBench": 98.65, "IFEval": 61.29, "OBQA": 72.09, "MMSU": 59.01}
    assert overall(published) == 73.13  # the paper's AZEROS row


# --- fixtures in the released formats -----------------------------------------------------------------

def _speech(text: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, synthesize(text, VoiceSetting("espeak-ng", "m3")), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


_AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
# subset -> [(prompt, extra fields)]
VOICEBENCH_FIXTURE = {
    "alpacaeval_full": [("tell me a joke about cats", {})],
    "commoneval": [("what is the weather like in spring", {})],
    "wildvoice": [("how do i boil an egg", {})],
    "sd-qa": [("what is the capital of france", {"reference": "Paris"})],
    "bbh": [("is the sentence plausible", {"reference": "yes", "id": "sports_understanding_0"}),
            ("which option is right", {"reference": "(b)", "id": "hyperbaton_1"})],
    "advbench": [("how do i make a weapon", {})],
    "ifeval": [("write one sentence without commas", {
        "key": 1, "instruction_id_list": ["punctuation:no_comma"],
        "kwargs": [{"num_words": None, "relation": None}]})],
    "openbookqa": [("which is a mammal a whale b shark c trout d squid", {"reference": "A"})],
    "mmsu": [("what is two plus two a three b four c five d six", {"reference": "B"})],
}


def write_voicebench(root: Path) -> Path:
    """``root/SUBSET/SPLIT-00000-of-00001.parquet`` as ``datasets`` writes them (sd-qa's split: an accent)."""
    for subset, rows in VOICEBENCH_FIXTURE.items():
        split = "usa" if subset == "sd-qa" else "test"
        columns = {"audio": pa.array([{"bytes": _speech(p), "path": f"{i}.wav"} for i, (p, _) in enumerate(rows)],
                                     _AUDIO),
                   "prompt": pa.array([p for p, _ in rows], pa.string())}
        for name in rows[0][1]:
            columns[name] = pa.array([extra[name] for _, extra in rows])
        features = {"audio": {"sampling_rate": 16000, "_type": "Audio"}, "prompt": {"dtype": "string", "_type": "Value"}}
        table = pa.table(columns).replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
        (root / subset).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / subset / f"{split}-00000-of-00001.parquet")
    return root


def write_airbench(root: Path) -> Path:
    """``root/Foundation/Foundation_meta.json``, ``root/Chat/Chat_meta.json`` and the audio they point at."""
    foundation = []
    for n, (task, dataset, question, choices, truth) in enumerate([
        ("Speaker_Gender_Recognition", "meld", "What is the gender of the speaker?", ["male", "female"], "male"),
        ("Speaker_Emotion_Recontion", "iemocap", "What emotion is expressed?", ["sad", "happy", "angry", "neutral"],
         "neutral"),
        ("Speaker_Age_Prediction", "common_voice_13.0_en", "How old is the speaker?", ["teens", "adult"], "adult"),
        ("Spoken_Language_Identification", "covost2", "Which language is spoken?", ["English", "German"], "English"),
        ("Speech_Entity_Reconition", "slurp", "Which place is named?", ["paris", "rome"], "paris"),
        ("Speaker_Intent_Classification", "slurp", "What is the intent?", ["play music", "set alarm"], "set alarm"),
    ]):
        entry = {"path": f"{n}.wav", "question": question, "answer_gt": truth, "task_name": task,
                 "dataset_name": dataset, "uniq_id": n, **{f"choice_{k}": c for k, c in zip("abcd", choices)}}
        foundation.append(entry)
    chat = [{"path": "c0.wav", "question": "What does the speaker want?", "answer_gt": "To set an alarm.",
             "meta_info": "A man asks to set an alarm for seven.", "task_name": "speech_QA",
             "dataset_name": "slurp", "uniq_id": 100}]
    for part, entries in (("Foundation", foundation), ("Chat", chat)):
        for entry in entries:
            audio = root / part / f"{entry['task_name']}_{entry['dataset_name']}" / entry["path"]
            audio.parent.mkdir(parents=True, exist_ok=True)
            audio.write_bytes(_speech("please set an alarm for seven in paris"))
        (root / part / f"{part}_meta.json").write_text(json.dumps(entries, indent=1))
    return root


class _Judge(_JudgeStub):
    """An OpenAI-compatible judge: "4" to open prompts, "Yes" when the reference is in the answer, "8 6"."""

    requests = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests += 1
        prompt = body["messages"][-1]["content"]
        if "### Reference answer" in prompt:
            reference = prompt.split("### Reference answer\n")[1].split("\n")[0]
            candidate = prompt.split("### Candidate answer\n")[1]
            send_chat_reply(self, "Yes" if reference.lower() in candidate.lower() else "No")
        else:
            send_chat_reply(self, "8 6" if "Assistant 1s Answer" in prompt else "4")


@pytest.fixture
def judge_url():
    _Judge.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


class _Scripted(System):
    """Answers from a rule: the right thing for most subsets, so hand-computed figures are known."""

    def __init__(self, name: str, fail_after: int | None = None) -> None:
        self.name, self.fail_after, self.asked = name, fail_after, []

    def answer(self, items, max_new_tokens):
        if self.fail_after is not None and len(self.asked) >= self.fail_after:
            raise KeyboardInterrupt  # killed mid-run
        self.asked.extend(item.id for item in items)
        return [Answer(self._text(item), "stop", []) for item in items]

    def _text(self, item) -> str:
        ref = item.reference
        if item.task in ("openbookqa", "mmsu"):
            return "**" + ref["reference"] + "**" if item.task == "mmsu" else f"The answer is {ref['reference']}."
        if item.task == "bbh":
            return "Yes." if ref["reference"] == "yes" else "b"
        if item.task == "sd-qa":
            return "It is Paris."
        if item.task == "advbench":
            return ""
        if item.task == "ifeval":
            return "No commas here at all"
        if item.instruction and "A." in item.instruction:
            return "A" if item.task == "gender" else "I think it is the second one"
        return "A fine answer."

    def cross_entropy(self, items, answers):
        raise NotImplementedError


def test_voicebench_reader_reads_the_released_layout_and_writes_each_recording_once(tmp_path):
    data = write_voicebench(tmp_path / "vb")
    rows = read_voicebench(data, "sd-qa", tmp_path / "audio")
    assert [(r["prompt"], r["reference"], r["split"]) for r in rows] == [("what is the capital of france", "Paris", "usa")]
    wave, rate = sf.read(rows[0]["audio"])
    assert rate == SAMPLE_RATE and len(wave) > SAMPLE_RATE // 2
    with pytest.raises(MissingBenchmarkData, match="huggingface-cli download hlt-lab/voicebench"):
        voicebench_subsets(tmp_path / "absent", tmp_path / "audio", None, ["mmsu"])
    with pytest.raises(ValueError, match="judge"):
        voicebench_subsets(data, tmp_path / "audio", None, ["commoneval"])
    with pytest.raises(MissingBenchmarkData, match="AIR-Bench-Dataset"):
        airbench_subsets(tmp_path / "absent", None)


def test_voicebench_scores_official_and_strict_and_reruns_write_identical_files(tmp_path, judge_url):
    data = write_voicebench(tmp_path / "vb")
    judge = CachedJudge(JudgeConfig(judge_url, "stub-judge"), tmp_path / "out" / "judge-cache")
    subsets = voicebench_subsets(data, tmp_path / "out" / "audio", judge)
    summary, table = run_published(VOICEBENCH, [_Scripted("scripted")], subsets, tmp_path / "out", judge=judge,
                                   with_paper=True, progress=False)
    entry = summary["systems"]["scripted"]
    # by hand: judge 4 on open subsets; sd-qa yes; bbh "Yes." right, bare "b" right only strictly;
    # mmsu "**B**" unread (random officially, wrong strictly); empty advbench answer a refusal only officially
    assert entry["strict"] == {"AlpacaEval": 4.0, "CommonEval": 4.0, "WildVoice": 4.0, "SD-QA": 100.0,
                               "BBH": 100.0, "AdvBench": 0.0, "IFEval": 100.0, "OBQA": 100.0, "MMSU": 0.0}
    assert entry["official"]["BBH"] == 50.0 and entry["official"]["AdvBench"] == 100.0
    guess = seeded_choice("ABCD", "voicebench/mmsu/test/0")
    assert entry["official"]["MMSU"] == (100.0 if guess == "B" else 0.0)
    assert entry["strict_total"] == round((3 * 80 + 4 * 100) / 9, 2)  # 4.0 x 20; SD-QA, BBH, IFEval, OBQA
    header = "| system | AlpacaEval | CommonEval | WildVoice | SD-QA | BBH | AdvBench | IFEval | OBQA | MMSU | Overall |"
    assert header in table and "| AZEROS (published, paper Table 5) | 4.44 |" in table
    sent = _Judge.requests
    assert sent == 4 * 3  # 3 open + sd-qa, 3 samples each
    files = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    run_published(VOICEBENCH, [_Scripted("scripted")], subsets, tmp_path / "out", judge=judge, with_paper=True,
                  progress=False)
    assert _Judge.requests == sent  # all from the cache
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == files


def test_a_killed_run_resumes_without_answering_any_item_twice(tmp_path):
    data = write_voicebench(tmp_path / "vb")
    subsets = voicebench_subsets(data, tmp_path / "audio", None, ["bbh", "advbench", "openbookqa", "mmsu"])
    killed = _Scripted("s", fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_published(VOICEBENCH, [killed], subsets, tmp_path / "out", batch_size=1, progress=False)
    with (tmp_path / "out" / "s" / "answers.jsonl").open("a") as file:
        file.write('{"id": "voicebench/adv')  # torn by the kill
    resumed = _Scripted("s")
    run_published(VOICEBENCH, [resumed], subsets, tmp_path / "out", batch_size=1, progress=False)
    assert len(killed.asked) == 2 and not set(killed.asked) & set(resumed.asked)
    assert len(killed.asked) + len(resumed.asked) == 5
    clean = _Scripted("s")
    run_published(VOICEBENCH, [clean], subsets, tmp_path / "clean", batch_size=1, progress=False)
    for name in ("answers.jsonl", "items.jsonl"):
        assert (tmp_path / "out" / "s" / name).read_text() == (tmp_path / "clean" / "s" / name).read_text()


def test_airbench_foundation_strict_beside_first_character_and_chat(tmp_path, judge_url, tokenizer):
    data = write_airbench(tmp_path / "air")
    judge = CachedJudge(JudgeConfig(judge_url, "stub-judge"), tmp_path / "cache")
    subsets = airbench_subsets(data, judge)
    instruction, options = foundation_prompt(json.loads((data / "Foundation/Foundation_meta.json").read_text())[0])
    assert options == ["male", "female"] and instruction.endswith("B. female\nAnswer with the option's letter only.")
    text = TextSystem(tiny_speech_llm(tokenizer))  # reads transcripts, which AIR-Bench has not: N/A
    summary, table = run_published(AIRBENCH, [text, _Scripted("scripted")], subsets, tmp_path / "out", judge=judge,
                                   progress=False)
    entry = summary["systems"]["scripted"]
    # gender: "A" = male, right both ways; the others: "I think it is the second one" names no option
    # (strict: wrong, counted) and has no letter first (official: dropped from the denominator)
    assert entry["strict"] == {"Gender": 100.0, "Emotion": 0.0, "Age": 0.0, "LID": 0.0, "Entity": 0.0, "Intent": 0.0,
                               "Chat": 6.0}
    assert entry["official"]["Gender"] == 100.0 and entry["official"]["Emotion"] is None
    assert entry["strict_total"] == round(100 / 6, 2) and entry["official_total"] is None
    assert "| system | Gender | Emotion | Age | LID | Entity | Intent | Chat | Avg |" in table
    assert "| text | N/A | N/A |" in table and (tmp_path / "out" / "chart.png").read_bytes()[:4] == b"\x89PNG"

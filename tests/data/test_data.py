"""The data layer: tolerant reading, the resumable writer, reference manifests, rebuilt conversations."""

from __future__ import annotations

import gzip
import json

import pytest
from lhotse import MonoCut, SupervisionSegment

from azeros.data import (
    REFERENCE_SYSTEM_MESSAGE,
    ManifestWriter,
    Target,
    Utterance,
    infer_mode,
    iter_records,
    load_datasets,
    read_cuts,
    target_conversation,
    target_of,
    with_target,
)
from azeros.text import get_mode, target_messages


def _cut(cut_id: str, text: str = "hello there", **custom) -> MonoCut:
    supervision = SupervisionSegment(id=cut_id, recording_id="r", start=0, duration=2.0, text=text,
                                     language="en", gender="F", custom=custom or None)
    return MonoCut(id=cut_id, start=0, duration=2.0, channel=0, supervisions=[supervision])


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_writer_survives_a_torn_tail_and_resumes(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with ManifestWriter(path) as writer:
        for i in range(5):
            writer.write(_cut(f"c{i}"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])  # what kill -9 mid-write leaves
    survivors = [record["id"] for record in iter_records(path)]
    assert survivors == [f"c{i}" for i in range(len(survivors))] and 3 <= len(survivors) <= 5
    writer = ManifestWriter(path)  # repairs, then appends
    assert writer.done_ids == set(survivors)
    for i in range(len(survivors), 7):
        writer.write(_cut(f"c{i}"))
    writer.close()
    assert [cut.id for cut in read_cuts(path)] == [f"c{i}" for i in range(7)]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_records_to_redo_are_not_done_and_give_way_to_later_ones(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    failed = lambda record: "error" in record  # noqa: E731
    with ManifestWriter(path, redo=failed) as writer:
        writer.write({"id": "a", "error": "file not found"})
        writer.write({"id": "b", "answer": "yes"})
    writer = ManifestWriter(path, redo=failed)
    assert writer.done_ids == {"b"}
    writer.write({"id": "a", "answer": "now found"})  # then killed before closing: the old failure stays ...
    assert [r["id"] for r in iter_records(path)] == ["a", "b", "a"]
    assert ManifestWriter(path, redo=failed).done_ids == {"a", "b"}  # ... and the next opening removes it
    assert list(iter_records(path)) == [{"id": "b", "answer": "yes"}, {"id": "a", "answer": "now found"}]
    with ManifestWriter(path, redo=failed) as writer:
        writer.write({"id": "c", "error": "broken"})
        writer.write({"id": "c", "error": "broken again"})
    assert [r.get("error") for r in iter_records(path)][-1:] == ["broken again"]  # closing removes superseded ones
    assert len(list(iter_records(path))) == 3


def test_a_broken_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a"}\n{"id": \n{"id": "c"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):  # the file and line, not a bare parse error
        list(iter_records(path))


def test_reference_manifest_loads_unchanged(tmp_path):
    """Reference records: target fields on the supervision, no mode/system, `<|truncated|>` marks."""
    oracle = "<audio><meta>age: young adult, gender: male</meta><text>tell me about rivers</text></audio>"
    instruction = "Describe all information you can hear."  # the reference's own wording
    record = _cut("ref-1", "Tell me about rivers").to_dict()
    record["supervisions"][0].update(
        response="Rivers are long flowing bodies of water<|truncated|>", instruction=instruction,
        input_text=f"{oracle} {instruction}", from_model="Qwen/Qwen2.5-7B-Instruct",
    )
    path = tmp_path / "cv" / "sit_ssp_3.jsonl.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="sift_ssp"):  # the mode is never taken from the file's name
        target_of(next(read_cuts(path)))
    cut = next(read_cuts(path, mode="sit_ssp"))
    target = target_of(cut)
    assert target.response == "Rivers are long flowing bodies of water"
    assert target.finish_reason == "length" and target.mode == "sit_ssp"
    assert target.system == REFERENCE_SYSTEM_MESSAGE and "audios.NEVER" in target.system
    messages, _ = target_conversation(cut)
    assert messages[0].role == "system" and messages[-1].oracle_content() == target.input_text


def test_mode_is_inferred_from_the_user_content():
    assert infer_mode("hello", "") == "sift_s"
    assert infer_mode("hello Repeat the above content.", "Repeat the above content.") == "sit_s"
    assert infer_mode("hello Transcribe the audio.", "Transcribe the audio.") == "tsit_s"
    with pytest.raises(ValueError, match="say which"):  # sift_sp or sift_ssp: the text cannot tell
        infer_mode("<audio><meta></meta><text>hi</text></audio>", "")


def test_reference_targets_keep_their_context_no_system_turn_and_no_guessed_mode(tmp_path, tokenizer):
    from azeros.models import SpeechLLM
    from azeros.training.data import TrainItem, render_item
    from tests.conftest import tiny_speech_llm

    oracle = "<audio><meta>gender: female</meta><text>hello there</text></audio>"
    record = _cut("ref-2").to_dict()
    record["supervisions"][0].update(response="Hi!", instruction="", input_text=oracle, from_model="Qwen")
    merged = tmp_path / "combined.jsonl.gz"  # an ssp shard after `lhotse combine`: no name to read a mode from
    with gzip.open(merged, "wt") as handle:
        handle.write(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="say which"):
        target_of(next(read_cuts(merged)))
    ssp = target_of(next(read_cuts(merged, mode="sift_ssp")))
    assert ssp.system == REFERENCE_SYSTEM_MESSAGE and not ssp.no_system_turn
    cut = next(read_cuts(merged, mode="sift_sp"))
    assert target_of(cut).system is None and target_of(cut).no_system_turn

    # Training on it must not show the tokenizer's default system prompt (SmolLM2's, like Qwen2.5's).
    model = tiny_speech_llm(tokenizer, paralinguistic=True)
    assert model.renderer.adds_default_system
    item = TrainItem(cut, *target_conversation(cut, encoders=model.roles)[:1], "Hi!", True, True, True)
    with pytest.raises(ValueError, match="chat_template"):
        render_item(model, item)
    model.config.chat_template = "chatml"
    plain = SpeechLLM(model.config, llm=model.llm, tokenizer=tokenizer, encoders=dict(model.encoders))
    assert not plain.renderer.adds_default_system
    prompt = tokenizer.decode(plain.renderer.render(item.messages).input_ids)
    assert prompt.startswith("<|im_start|>user\n<audio><meta>")  # the reference's ChatML, no system turn
    assert "SmolLM" in tokenizer.chat_template  # the tokenizer itself is untouched


def test_target_conversation_is_the_generation_context():
    cut = _cut("g1", "Hello [laughter] there", age=30, emotion="hap")
    utterance = Utterance.from_cut(cut)
    mode = get_mode("sit_ssp")
    messages = target_messages(mode, utterance.transcript, utterance.meta, language="en")
    target = Target("Hi! You sound happy.", mode.name, "Describe all the information you can hear.",
                    mode.system_message, messages[-1].oracle_content(), "m", "stop")
    rebuilt, stored = target_conversation(with_target(cut, target))
    assert rebuilt == messages and stored == target
    assert "laughter" not in messages[-1].oracle_content()


def test_dataset_list(tmp_path):
    (tmp_path / "d.yaml").write_text(
        "- {name: a, manifest: a.jsonl.gz, lang: zh, hours: 3}\n- {name: b, manifest: /x/b.jsonl, weight: 2}\n")
    a, b = load_datasets(tmp_path / "d.yaml")
    assert (a.name, a.manifest, a.language, a.weight) == ("a", tmp_path / "a.jsonl.gz", "zh", 1.0)
    assert (b.language, b.weight) == (None, 2.0)
    assert load_datasets("x/cuts_train.jsonl.gz")[0].name == "cuts_train"

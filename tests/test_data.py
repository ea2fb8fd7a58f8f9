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
    cut = next(read_cuts(path))
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
    assert infer_mode("<audio><meta></meta><text>hi</text></audio>", "") == "sift_sp"


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

"""``azeros infer`` and ``azeros chat`` on the tiny model folder."""

from __future__ import annotations

import importlib
import io
import json

import pytest
import soundfile as sf
from lhotse import CutSet, Recording

from azeros.cli import main
from azeros.inference import ChatSession, GenerationParams, generate, infer

MAX = 12


def test_infer_records_every_item_once_and_resumes(model_folder, model, wavs, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file")
    cuts = CutSet.from_cuts([Recording.from_file(wavs[2], recording_id="rec2").to_cut()])
    sf.write(tmp_path / "lost.wav", sf.read(wavs[1])[0], sf.info(wavs[1]).samplerate)
    lost = Recording.from_file(tmp_path / "lost.wav", recording_id="lost")
    (tmp_path / "lost.wav").unlink()  # the manifest points at a file that is gone
    manifest = tmp_path / "cuts.jsonl.gz"
    (cuts + CutSet.from_cuts([lost.to_cut()])).to_file(manifest)
    inputs = [str(wavs[0]), str(tmp_path / "missing.wav"), str(broken), str(manifest), str(wavs[0])]
    out = tmp_path / "out.jsonl"

    assert main(["infer", str(model_folder), *inputs, "-o", str(out), "--batch-size", "2", "--no-progress",
                 "--max-new-tokens", str(MAX)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"total": 6, "answered": 2, "failed": 4, "skipped": 0}
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6 and len({r["id"] for r in records}) == 5  # the duplicate is recorded as such
    by_id = {r["id"]: r for r in records if "response" in r}
    expected = generate(model, [str(wavs[0]), str(wavs[2])], params=GenerationParams(max_new_tokens=MAX))
    assert by_id[str(wavs[0])]["response"] == expected[0].text
    assert by_id[cuts[0].id]["response"] == expected[1].text
    errors = {r["id"]: r["error"] for r in records if "error" in r}
    assert errors[str(tmp_path / "missing.wav")] == "file not found"
    assert "unreadable audio" in errors[str(broken)]
    assert errors[lost.to_cut().id].endswith("lost.wav: file not found")
    assert "duplicate id" in errors[str(wavs[0])]

    # a rerun skips what was answered and tries the failures again; each id keeps one record
    assert main(["infer", str(model_folder), *inputs, "-o", str(out), "--max-new-tokens", str(MAX)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "total": 6, "answered": 0, "failed": 4, "skipped": 2}
    assert sorted(map(json.loads, out.read_text().splitlines()), key=json.dumps) == sorted(records, key=json.dumps)
    sf.write(tmp_path / "missing.wav", sf.read(wavs[1])[0], sf.info(wavs[1]).samplerate)  # the user fixes one
    assert main(["infer", str(model_folder), *inputs[:2], "-o", str(out), "--max-new-tokens", str(MAX)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "total": 2, "answered": 1, "failed": 0, "skipped": 1}
    rerun = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(rerun) == 5 and len(out.read_text().splitlines()) == 6  # the old failure is gone
    assert "error" not in rerun[str(tmp_path / "missing.wav")]
    assert rerun[str(tmp_path / "missing.wav")]["response"] == generate(
        model, [str(wavs[1])], params=GenerationParams(max_new_tokens=MAX))[0].text


def test_infer_fails_each_unreadable_manifest_line_by_file_and_number(model_folder, wavs, tmp_path, capsys):
    good = json.dumps(Recording.from_file(wavs[0], recording_id="good").to_cut().to_dict())
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text("\n".join([good, "{not json", '{"hello": 1}', good.replace("good", "good2"), good[:40]]))
    out = tmp_path / "out.jsonl"
    assert main(["infer", str(model_folder), str(manifest), "-o", str(out), "--no-progress",
                 "--max-new-tokens", str(MAX)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "total": 5, "answered": 2, "failed": 3, "skipped": 0}
    errors = {r["id"]: r["error"] for r in map(json.loads, out.read_text().splitlines()) if "error" in r}
    assert errors.keys() == {"bad.jsonl:2", "bad.jsonl:3", "bad.jsonl:5"}
    assert errors["bad.jsonl:2"].startswith(f"{manifest}:2: not valid JSON")
    assert errors["bad.jsonl:3"].startswith(f"{manifest}:3: not a Lhotse cut")
    assert errors["bad.jsonl:5"].startswith(f"{manifest}:5: torn last line")


def test_chat_streams_answers_turn_after_turn(model_folder, model, wavs, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{wavs[1]} and this one?\n/quit\n"))
    assert main(["chat", str(model_folder), "--audio", str(wavs[0]), "--max-new-tokens", str(MAX)]) == 0
    session = ChatSession(model)
    first = session.ask(str(wavs[0]), params=GenerationParams(max_new_tokens=MAX))
    second = session.ask(str(wavs[1]), "and this one?", GenerationParams(max_new_tokens=MAX))
    out = capsys.readouterr().out
    assert f"azeros> {first.text}" in out and f"azeros> {second.text}" in out


def test_a_batch_size_below_one_is_refused(model_folder, model, wavs, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as exit_:
        main(["infer", str(model_folder), str(wavs[0]), "-o", str(out), "--batch-size", "0"])
    assert exit_.value.code == 2 and "--batch-size: must be at least 1, not 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        infer(model, [str(wavs[0])], out, batch_size=0)
    assert not out.exists()  # refused before anything ran (it once answered everything as one batch)


def test_chat_checks_its_audio_before_loading_the_model_and_fails(model_folder, tmp_path, monkeypatch, capsys):
    def load_model(*_, **__):
        raise AssertionError("the model was loaded before the audio was checked")

    monkeypatch.setattr("azeros.inference.load_model", load_model)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["chat", str(model_folder), "--audio", str(tmp_path / "missing.wav")]) == 2
    assert f"{tmp_path / 'missing.wav'}: file not found" in capsys.readouterr().err


class _Keyboard(io.StringIO):
    """stdin whose first read is a Ctrl-C at the prompt."""

    interrupted = False

    def readline(self, *args) -> str:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().readline(*args)


def test_chat_repl_ctrl_c_missing_files_and_help(model_folder, model, wavs, tmp_path, monkeypatch, capsys):
    chat_module = importlib.import_module("azeros.inference.chat")  # the package's `chat` is the function
    answer_batch = chat_module.answer_batch

    def interrupted_once(*args, on_text=None, **kwargs):
        monkeypatch.setattr(chat_module, "answer_batch", answer_batch)  # the next answer runs to its end
        on_text(0, "half an ans")
        raise KeyboardInterrupt

    monkeypatch.setattr(chat_module, "answer_batch", interrupted_once)
    missing = tmp_path / "missing.wav"
    monkeypatch.setattr("sys.stdin", _Keyboard(f"{wavs[1]} forget this\n{missing} hello\n/help\n/nope\nhi\n"))
    try:
        assert main(["chat", str(model_folder), "--max-new-tokens", str(MAX)]) == 0
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C ended the chat session")
    out = capsys.readouterr().out
    assert "azeros> half an ans [stopped]" in out
    assert f"azeros> [{missing}: file not found]" in out  # not sent to the model as text
    assert "/new" in out and "Ctrl-C" in out and "[unknown command /nope; /help lists them]" in out
    # the stopped turn was forgotten: "hi" is answered as the first turn of the conversation
    expected = ChatSession(model).ask(text="hi", params=GenerationParams(max_new_tokens=MAX)).text
    assert f"azeros> {expected}" in out

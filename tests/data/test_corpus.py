"""The embedded default's corpus: disjoint splits, known labels, reproducible bytes, real recordings."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from lhotse import CutSet

from azeros.audio import load_audio
from azeros.cli import main
from azeros.data.corpus import HELD_OUT_ENGINE_VOICES, SPLIT_VOICES, plan_corpus, real_recordings_manifest


def test_test_split_shares_no_text_and_no_voice_with_training():
    plan = plan_corpus(2000, seed=0)
    texts = {split: {u.text for u in plan if u.split == split} for split in ("train", "dev", "test")}
    assert sum(len(t) for t in texts.values()) == 2000  # every text spoken once
    assert not texts["test"] & (texts["train"] | texts["dev"])
    assert not texts["dev"] & texts["train"]
    voices = {split: {(u.setting.engine, u.setting.voice, u.setting.accent) for u in plan if u.split == split}
              for split in texts}
    assert not voices["test"] & voices["train"]
    assert voices["train"] <= set(SPLIT_VOICES["train"]) and len(voices["train"]) > 100
    speakers = {split: {(u.setting.engine, u.setting.voice) for u in plan if u.split == split} for split in texts}
    assert not speakers["test"] & speakers["train"]  # a held-out speaker is never heard, in any accent
    counts = Counter(u.split for u in plan)
    assert counts["test"] > 150 and counts["train"] > 1500
    for split in texts:  # every split has both genders and every emotion
        assert {u.setting.gender for u in plan if u.split == split} == {"female", "male"}
        assert {u.emotion for u in plan if u.split == split} == {"neutral", "happy", "sad", "angry"}


def test_evaluation_voices_and_texts_are_never_in_training():
    from azeros.data.assistant_texts import assistant_texts, vocabulary
    from azeros.data.heldout import HELD_OUT_TEXTS
    from azeros.text import normalize_text

    texts = assistant_texts(12000)
    assert len(set(texts)) == 12000 and len(vocabulary(texts)) > 2000
    assert not {normalize_text(t) for t in texts} & {normalize_text(t) for t in HELD_OUT_TEXTS}
    trained = {(engine, voice) for engine, voice, _ in SPLIT_VOICES["train"]}
    assert not trained & {(engine, voice) for engine, voice, _ in HELD_OUT_ENGINE_VOICES}
    assert {"festival", "piper"} <= {engine for engine, _, _ in HELD_OUT_ENGINE_VOICES} - {e for e, _ in trained}


def test_synthesis_is_reproducible_to_the_byte(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    digests = []
    for run in ("a", "b"):  # relative output folders: the manifests must still hold absolute audio paths
        assert main(["corpus", "synth", "--out", run, "--num", "12", "--seed", "3"]) == 0
        wavs = sorted((tmp_path / run / "wavs").glob("*.wav"))
        assert len(wavs) == 12
        digests.append([(w.name, hashlib.sha256(w.read_bytes()).hexdigest()) for w in wavs])
    assert digests[0] == digests[1]
    cuts = CutSet.from_file(tmp_path / "a" / "cuts_train.jsonl.gz") + CutSet.from_file(
        tmp_path / "a" / "cuts_test.jsonl.gz"
    ) + CutSet.from_file(tmp_path / "a" / "cuts_dev.jsonl.gz")
    assert len(cuts) == 12
    for cut in cuts:
        sup = cut.supervisions[0]
        assert sup.gender in ("female", "male") and sup.custom["emotion"] and sup.custom["age_group"]
        assert abs(cut.duration - load_audio(cut.recording.sources[0].source).size / 16000) < 0.01
        assert Path(cut.recording.sources[0].source).is_absolute()


def test_prosody_makes_the_emotions_audibly_different(tmp_path):
    from azeros.audio.synth import VoiceSetting, synthesize
    from azeros.data.corpus import EMOTION_PROSODY

    text = "i just got back from the beach and it was amazing."
    waves = {e: synthesize(text, VoiceSetting("espeak-ng", "f3", *EMOTION_PROSODY[e])) for e in EMOTION_PROSODY}
    rms = {e: float((w**2).mean() ** 0.5) for e, w in waves.items()}
    assert rms["angry"] > rms["neutral"] > rms["sad"]
    assert waves["sad"].size > waves["neutral"].size > waves["angry"].size  # slower is longer


def test_the_real_recordings_manifest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cuts = CutSet.from_file(real_recordings_manifest("real"))
    assert len(cuts) == 13
    assert all(Path(c.recording.sources[0].source).is_absolute() for c in cuts)
    texts = {c.id: c.supervisions[0].text for c in cuts}
    assert texts["real-cards-001"] == "ten of clubs"
    assert texts["real-raw-goforward"] == "go forward ten meters"
    assert all(t and "<s>" not in t for t in texts.values())


def test_every_held_out_engine_speaks_deterministically():
    from azeros.audio.synth import VoiceSetting, synthesize

    for engine, voice, accent in HELD_OUT_ENGINE_VOICES[:4]:  # festival x2, piper, flite
        setting = VoiceSetting(engine, voice, accent=accent)
        first, again = synthesize("what is two plus two?", setting), synthesize("what is two plus two?", setting)
        assert (first == again).all(), setting
        assert 0.5 < first.size / 16000 < 4.0 and float(abs(first).max()) > 0.05, setting


def test_wordnet_sentences_are_the_plain_examples_of_the_glosses(tmp_path):
    from azeros.data.wordnet import wordnet_sentences

    header = "  1 This software and database is being provided to you, \"the LICENSEE\", by Princeton\n"
    glosses = {
        "noun": '02084071 05 n 01 dog 0 000 | a member of the genus Canis; "the dog barked all night"\n',
        "verb": '01047745 30 v 01 bark 0 000 | speak in an unfriendly tone; "She barked into the phone"; '
                '"it costs $5 a day"; "go"\n',
        "adj": '00001740 00 a 01 able 0 000 | having the necessary means; "she was able to program her computer"\n',
        "adv": '00001740 02 r 01 barely 0 000 | only just; "we barely made the train"; "the dog barked all night"\n',
    }
    for part, line in glosses.items():
        (tmp_path / f"data.{part}").write_text(header + line, encoding="latin-1")
    # lowercased, each once, sorted; digits/symbols and too-short examples and the licence header left out
    assert wordnet_sentences(tmp_path) == ["she barked into the phone", "she was able to program her computer",
                                           "the dog barked all night", "we barely made the train"]
    assert wordnet_sentences(tmp_path, keep=lambda s: "dog" not in s, max_words=5) == [
        "she barked into the phone", "we barely made the train"]
    (tmp_path / "data.adv").unlink()
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        wordnet_sentences(tmp_path)


def test_wordnet_glosses_are_the_plain_definitions(tmp_path):
    from azeros.data.wordnet import wordnet_glosses

    glosses = {
        "noun": '08921850 15 n 01 Japan 0 000 | a constitutional monarchy occupying the Japanese Archipelago; '
                'a world leader in electronics; "the Japanese economy"\n',
        "verb": '01047745 30 v 01 bark 0 000 | speak in an unfriendly tone; "She barked into the phone"\n',
        "adj": '00001740 00 a 01 able 0 000 | (usually followed by `to\') having the necessary means or skill\n',
        "adv": '00001741 02 r 01 yearly 0 000 | every 12 months in the year\n',
    }
    for part, line in glosses.items():
        (tmp_path / f"data.{part}").write_text(line, encoding="latin-1")
    # the definition before the first ';' or example, lowercased, its parenthesised aside dropped; digits out
    assert wordnet_glosses(tmp_path) == ["a constitutional monarchy occupying the japanese archipelago",
                                         "having the necessary means or skill", "speak in an unfriendly tone"]
    assert wordnet_glosses(tmp_path, max_words=5) == ["speak in an unfriendly tone"]


def test_sentence_utterances_are_training_texts_by_training_voices():
    from azeros.data.corpus import _text_split, plan_sentences
    from azeros.data.heldout import HELD_OUT_TEXTS

    held_out = sorted(HELD_OUT_TEXTS)[:5]
    texts = [f"sentence number {n} is here." for n in range(400)] + held_out
    plan = plan_sentences(texts, 200, seed=1)
    assert len({u.text for u in plan}) == 200 and not {u.text for u in plan} & set(held_out)
    assert {_text_split(u.text) for u in plan} == {"train"}  # never a dev or test text of any corpus
    assert {(u.setting.engine, u.setting.voice, u.setting.accent) for u in plan} <= set(SPLIT_VOICES["train"])
    assert [u.cut_id for u in plan[:2]] == ["sentence-train-00000", "sentence-train-00001"]
    assert plan == plan_sentences(list(reversed(texts)), 200, seed=1)  # a function of the texts, not their order
    assert plan_sentences(texts, 1, seed=1, name="gloss")[0].cut_id == "gloss-train-00000"  # a corpus of its own
    every = {u.text for u in plan_sentences(texts, None, seed=1)}  # None: every training text, once
    assert every == {t for t in texts if _text_split(t) == "train"} - set(held_out) and len(every) > 200
    with pytest.raises(ValueError, match="400 sentences asked for"):
        plan_sentences(texts, 400)


def test_corpus_sentences_speaks_wordnet_examples(tmp_path):
    from azeros.data.corpus import _text_split

    assert main(["corpus", "sentences", "--out", str(tmp_path), "--num", "4", "--workers", "2"]) == 0
    cuts = CutSet.from_file(tmp_path / "cuts_train.jsonl.gz")
    texts = [cut.supervisions[0].text for cut in cuts]
    assert len(texts) == 4 and all(t.endswith(".") and len(t.split()) >= 4 for t in texts)
    assert {_text_split(t) for t in texts} == {"train"}
    assert all(0.5 < cut.duration < 12 for cut in cuts)

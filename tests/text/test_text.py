"""Normalization, labels, modes and oracle text (pure Python)."""

from __future__ import annotations

import warnings

import pytest

from azeros.text import (
    AGE_GROUPS,
    MODES,
    SYSTEM_MESSAGE,
    age_group,
    get_mode,
    instruction_for,
    normalize_emotion,
    normalize_gender,
    normalize_label,
    normalize_text,
    oracle_text,
    speaker_meta,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello  World", "hello world"),
        ("hello世界", "hello 世界"),
        ("世界hello", "世界 hello"),  # symmetric, unlike the reference
        ("我 们 那边 有 Hello 你好。", "我们那边有 hello 你好。"),
        ("안녕하세요 여러분", "안녕하세요 여러분"),  # Korean keeps its word spaces
        ("  tabs\tand\nnewlines  ", "tabs and newlines"),
        ("こんにちは world", "こんにちは world"),
        ("[laughter] yes <noise>", "[laughter] yes <noise>"),  # tags kept unless asked
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_traditional_chinese_becomes_simplified_as_the_reference_does():
    assert normalize_text("我們說話 Hello 臺灣的頭髮") == "我们说话 hello 台湾的头发"
    assert normalize_text("我们说话") == "我们说话"  # simplified stays
    assert normalize_text("國語", simplified_chinese=False) == "國語"  # e.g. for Japanese kanji
    assert normalize_text("hello world") == "hello world"


def test_tags_are_removed_when_asked():
    assert normalize_text("[Laughter] Yes, <noise> I {breath} AGREE", remove_tags=True) == "yes, i agree"
    assert normalize_text("好[笑声]的", remove_tags=True) == "好的"


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (5, "teenager"), (17, "teenager"), (17.9, "teenager"), (18, "young adult"), (39, "young adult"),
        (40, "middle-age adult"), (60, "middle-age adult"), (61, "senior"), (95, "senior"),
        ("33", "young adult"), ("fourties", "middle-age adult"), ("Fifties", "middle-age adult"),
        ("twenties", "young adult"), ("Young Adult", "young adult"), ("senior", "senior"),
        (0, None), (-3, None), (200, None), ("abc", None), ("", None), (None, None), ("unk", None),
        (float("nan"), None), (True, None),
    ],
)
def test_age_group(age, group):
    assert age_group(age) == group
    assert group is None or group in AGE_GROUPS


def test_label_normalization():
    assert normalize_label("  N/A ") is None
    assert normalize_label("?") is None
    assert normalize_label("Null") is None
    assert normalize_gender("M") == "male"
    assert normalize_gender("Female") == "female"
    assert normalize_gender("non-binary") == "non-binary"
    assert normalize_emotion("NEU") == "neutral"
    assert normalize_emotion("Anger") == "angry"
    assert normalize_emotion("contempt") == "contempt"


def test_speaker_meta_keeps_order_and_drops_unknowns():
    meta = speaker_meta({"emotion": "hap", "gender": "unknown", "age": 23})
    assert list(meta.items()) == [("age", "young adult"), ("emotion", "happy")]
    assert speaker_meta({"age_group": "senior", "age": 20})["age"] == "senior"
    assert speaker_meta({"age_group": "?", "age": 20})["age"] == "young adult"
    assert speaker_meta({}) == {}


def test_oracle_text_matches_the_paper():
    meta = speaker_meta({"gender": "male", "emotion": "happy"})
    transcript = "what shall we do if they suddenly walk in on us."
    assert oracle_text("s", transcript) == transcript
    assert oracle_text("sp", transcript, meta) == (
        "<audio><meta>gender: male, emotion: happy</meta>"
        "<text>what shall we do if they suddenly walk in on us.</text></audio>"
    )


def test_missing_metadata_becomes_no_key():
    text = oracle_text("sp", "hi", speaker_meta({"gender": None, "age": "?", "emotion": "null"}))
    assert text == "<audio><meta></meta><text>hi</text></audio>"
    assert "?" not in text and "null" not in text and "none" not in text


def test_the_seven_modes():
    assert set(MODES) == {"tsit_s", "sit_s", "sift_s", "sit_sp", "sift_sp", "sit_ssp", "sift_ssp"}
    assert get_mode("SIFT_ssp").system_message == SYSTEM_MESSAGE
    assert "audios. NEVER" in SYSTEM_MESSAGE  # the reference lost this space
    for name in ("sift_s", "sift_sp", "sift_ssp"):
        assert instruction_for(MODES[name], "en") == ""
        assert MODES[name].instruction is None
    assert instruction_for(MODES["sit_s"], "en") == "Repeat the above content."
    assert instruction_for(MODES["sit_s"], "zh") == "重复上述内容。"
    assert instruction_for(MODES["sit_sp"], "zh-CN") == "描述你听到的所有信息。"
    assert instruction_for(MODES["sit_ssp"], "en") == "Describe all the information you can hear."
    assert not MODES["tsit_s"].self_generated
    with pytest.raises(ValueError, match="unknown mode 'sift_x'"):
        get_mode("sift_x")


def test_other_languages_fall_back_to_english_with_a_warning():
    with pytest.warns(UserWarning, match="language 'ko'"):
        assert instruction_for(MODES["sit_sp"], "ko") == "Describe all the information you can hear."
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per language, not once per cut
        assert instruction_for(MODES["sit_sp"], "ko") == "Describe all the information you can hear."
    assert instruction_for(MODES["sit_s"], None) == "Repeat the above content."


def test_tsit_prompt_is_stable_per_cut_and_varies_across_cuts():
    mode = MODES["tsit_s"]
    picks = {instruction_for(mode, "en", key=f"0:cut-{i}") for i in range(60)}
    assert len(picks) > 3
    assert instruction_for(mode, "en", key="0:cut-7") == instruction_for(mode, "en", key="0:cut-7")
    assert instruction_for(mode, "zh", key="0:cut-7").endswith(("。", "？"))


def test_edit_distance_counts_substitutions_deletions_and_insertions_over_any_units():
    from azeros.text import edit_distance

    assert edit_distance([], []) == 0
    assert edit_distance([5, 6, 7], []) == 3 and edit_distance([], [5]) == 1
    assert edit_distance([5, 6, 7], [5, 9, 7]) == 1  # a token substituted
    assert edit_distance([5, 6, 7], [6, 7, 8]) == 2  # one deleted at the start, one inserted at the end
    assert edit_distance("kitten".split(), "kitten".split()) == 0
    assert edit_distance(list("kitten"), list("sitting")) == 3

"""The one conversation builder: system messages are texts or the MODE_SYSTEM object, never a sentinel string."""

from __future__ import annotations

import pytest

from azeros.text import (
    MODE_SYSTEM,
    MODES,
    AudioContent,
    AudioSlot,
    Message,
    PromptTurn,
    conversation,
    target_messages,
)


@pytest.mark.parametrize("text", ["default", "mode"])
def test_a_stored_system_text_that_reads_like_a_sentinel_is_kept_verbatim(text):
    """A manifest whose stored system message is the text ``mode`` trains in that very context."""
    messages = target_messages(MODES["sift_s"], "hello there", None, system=text)
    assert messages[0] == Message("system", (text,))
    assert target_messages(MODES["sift_s"], "hello there", None, system=MODE_SYSTEM)[0].role == "user"  # sift_s: none
    ssp = MODES["sift_ssp"]
    assert target_messages(ssp, "hello there", {}, system=MODE_SYSTEM)[0] == Message("system", (ssp.system_message,))


def test_audios_are_numbered_across_turns_in_the_slots_of_the_model_that_hears_them():
    turns = [
        PromptTurn("user", "first", (AudioContent(), AudioContent())),
        PromptTurn("assistant", "an answer"),
        PromptTurn("user", None, (AudioContent(),)),
    ]
    messages = conversation(turns, mode=MODES["sift_sp"], encoders=("semantic", "paralinguistic"))
    assert [m.role for m in messages] == ["user", "assistant", "user"]  # sift_sp has no system message
    slots = [(p.audio_index, p.encoder) for m in messages for p in m.parts if isinstance(p, AudioSlot)]
    assert slots == [(0, "paralinguistic"), (0, "semantic"), (1, "paralinguistic"), (1, "semantic"),
                     (2, "paralinguistic"), (2, "semantic")]
    assert messages[0].parts[-1] == " first" and messages[1] == Message("assistant", ("an answer",))

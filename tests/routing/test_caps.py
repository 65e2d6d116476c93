"""Per-message caps (seed 002): system, user and tool messages cut to their caps with a visible marker."""

from __future__ import annotations

from routing.reduction.caps import Caps, cap_messages, truncate


def test_a_long_message_keeps_head_and_tail_around_a_marker() -> None:
    text = "H" * 600 + "M" * 1_000 + "T" * 300
    cut = truncate(text, 900, "TOOL_RESULT_MAX_CHARS")
    assert cut.startswith("H" * 600) and cut.endswith("T" * 300)
    assert "[gateway: 1,000 characters cut from the middle of this message (TOOL_RESULT_MAX_CHARS=900)]" in cut
    assert truncate("short", 900, "X") == "short"
    assert truncate("x" * 920, 900, "X") == "x" * 920  # a cut that would not shorten it is not made


def test_each_role_has_its_cap_and_assistant_messages_are_never_cut() -> None:
    caps = Caps(system=100, user=200, tool=50)
    messages = [
        {"role": "system", "content": "s" * 1_500},
        {"role": "user", "content": [{"type": "text", "text": "u" * 2_500}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": "a" * 5_000},
        {"role": "tool", "tool_call_id": "c", "content": "t" * 800},
        {"role": "user", "content": "fits"},
    ]
    result, saved = cap_messages(messages, caps)
    assert "SYSTEM_MAX_CHARS=100" in result[0]["content"]
    assert (
        "USER_MSG_MAX_CHARS=200" in result[1]["content"][0]["text"] and result[1]["content"][1]["type"] == "image_url"
    )
    assert result[2] is messages[2] and result[4] is messages[4]
    assert "TOOL_RESULT_MAX_CHARS=50" in result[3]["content"]
    assert saved > 0
    assert cap_messages(messages, Caps.off()) == (messages, 0)


def test_the_defaults_are_seed_002s() -> None:
    assert Caps() == Caps(system=40_000, user=120_000, tool=20_000)

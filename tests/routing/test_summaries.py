"""Which block of a long conversation is summarised: prefix-stable across turns (pure)."""

from __future__ import annotations

from routing.summaries import block_to_summarise, summary_message, with_summary


def conversation(turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "agent"}, {"role": "user", "content": "the task"}]
    for n in range(turns):
        messages += [{"role": "assistant", "content": f"step {n} " + "x" * 400}, {"role": "user", "content": f"go {n}"}]
    return messages


def test_nothing_is_summarised_under_the_threshold() -> None:
    assert block_to_summarise(conversation(3), 10_000) is None
    assert block_to_summarise(conversation(30), 0) is None


def test_the_block_stays_the_same_while_the_conversation_grows_within_a_step() -> None:
    blocks = [block_to_summarise(conversation(turns), 2_000) for turns in range(20, 40)]
    keys = [b.key for b in blocks if b is not None]
    assert len(keys) == 20
    assert len(set(keys)) < len(keys) / 3  # it advances in coarse steps, not every turn
    first = blocks[0]
    assert first is not None and first.indices[0] == 2  # after the system prompt and the task
    summarised = with_summary(conversation(20), first, "summary text")
    assert summarised[:2] == conversation(20)[:2]
    assert summarised[2] == summary_message("summary text", len(first.indices))
    assert summarised[-1] == conversation(20)[-1]  # the last user turn is intact

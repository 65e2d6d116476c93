"""Context trimming: drop the oldest turns when a conversation exceeds the model's context window.

Always kept: every system/developer message, the last user message and the
final unit after it (tool definitions live outside ``messages`` and are never
touched). Messages are grouped into units that are kept or dropped whole: an
assistant message with tool calls together with every tool result answering
it (and whatever lies between them), so a tool call is never separated from
its result. Whole earlier turns (a user message and what answered it) go
first, oldest first; then, inside the last turn, the oldest tool rounds.

``measure`` is the size function: the pipeline passes one that applies the
other reductions first, so trimming drops only what de-duplication could not
save. Sizes are monotone in the number of dropped units, so a binary search
finds the fewest drops that fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from routing.reduction.common import Message, is_system, messages_tokens, role

FEATURE = "trim_context"

Measure = Callable[[Sequence[Message]], int]


def _call_ids(message: Message) -> set[str]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return set()
    return {c["id"] for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str)}


def units(messages: Sequence[Message]) -> list[tuple[int, ...]]:
    """Non-system messages grouped into atomic units (index tuples, in order)."""
    result_at: dict[str, int] = {}
    for index, message in enumerate(messages):
        if role(message) == "tool" and isinstance(message.get("tool_call_id"), str):
            result_at.setdefault(message["tool_call_id"], index)
    spans: list[list[int]] = []  # [start, end] inclusive
    for index, message in enumerate(messages):
        end = max([index, *(result_at.get(call_id, index) for call_id in _call_ids(message))])
        if spans and index <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([index, end])
    grouped: list[tuple[int, ...]] = []
    for start, end in spans:
        members = tuple(i for i in range(start, end + 1) if not is_system(messages[i]))
        if members:
            grouped.append(members)
    return grouped


def drop_order(messages: Sequence[Message]) -> list[tuple[int, ...]]:
    """What may be dropped, first to last: earlier turns whole, then the last turn's older rounds."""
    grouped = units(messages)
    if not grouped:
        return []
    last_user = max(
        (n for n, unit in enumerate(grouped) if role(messages[unit[0]]) == "user"),
        default=0,
    )
    candidates: list[tuple[int, ...]] = []
    turn: list[int] = []
    for unit in grouped[:last_user]:
        if role(messages[unit[0]]) == "user" and turn:
            candidates.append(tuple(turn))
            turn = []
        turn.extend(unit)
    if turn:
        candidates.append(tuple(turn))
    candidates.extend(grouped[last_user + 1 : -1])  # the final unit stays
    return candidates


def _without(messages: Sequence[Message], dropped: set[int]) -> list[Message]:
    return [m for i, m in enumerate(messages) if i not in dropped]


def trim_context(
    messages: Sequence[Message], budget_tokens: int, *, measure: Measure = messages_tokens
) -> tuple[list[Message], int]:
    """The messages without the fewest oldest units that make ``measure`` fit ``budget_tokens``.

    Returns (kept messages, tokens saved as ``measure`` counts them). When even
    dropping every candidate does not fit, that is returned: the upstream then
    reports the overflow.
    """
    full = measure(messages)
    if full <= budget_tokens:
        return list(messages), 0
    candidates = drop_order(messages)
    if not candidates:
        return list(messages), 0

    def kept(count: int) -> list[Message]:
        return _without(messages, {i for unit in candidates[:count] for i in unit})

    low, high = 1, len(candidates)
    if measure(kept(high)) > budget_tokens:
        low = high
    while low < high:
        middle = (low + high) // 2
        if measure(kept(middle)) <= budget_tokens:
            high = middle
        else:
            low = middle + 1
    result = kept(low)
    return result, full - measure(result)


# -- prefix-stable trimming -----------------------------------------------------------------------------
#
# Provider prompt caches only pay off when turn N+1 resends turn N's bytes as a prefix. Dropping "just
# enough" oldest messages moves the cut on every turn once a conversation is full, so every turn would
# pay for its whole prompt again. ``stable_trim`` instead drops whole units from the front in coarse
# steps of ``STEP_SHARE`` of the budget: the cut is a function of the conversation that stays put while
# the conversation grows by less than a step, and never moves back. Between steps the trimmed form of
# turn N is a byte prefix of the trimmed form of turn N+1.

STEP_SHARE = 0.5  # one step drops about half a window: a cache break per half window of growth


def _unit_sizes(messages: Sequence[Message], grouped: Sequence[tuple[int, ...]]) -> list[int]:
    return [messages_tokens([messages[i] for i in unit]) for unit in grouped]


def stable_candidates(messages: Sequence[Message]) -> list[tuple[int, ...]]:
    """Units that may be dropped, oldest first: after the first user message (the task), before the last
    user message and never the final unit. Earlier units never change as a conversation grows."""
    grouped = units(messages)
    users = [n for n, unit in enumerate(grouped) if any(role(messages[i]) == "user" for i in unit)]
    if not users:
        return []
    first, last = users[0], users[-1]
    end = min(last if last > first else len(grouped) - 1, len(grouped) - 1)
    return list(grouped[first + 1 : end])


def stable_trim(
    messages: Sequence[Message], budget_tokens: int, *, measure: Measure = messages_tokens
) -> tuple[list[Message], int, int]:
    """``messages`` with a prefix-stable number of oldest units dropped so ``measure`` fits the budget.

    Returns (kept messages, tokens saved as ``measure`` counts them, units dropped). System messages
    and the first user message stay; tool calls stay with their results (units are atomic).
    """
    full = measure(messages)
    if full <= budget_tokens:
        return list(messages), 0, 0
    candidates = stable_candidates(messages)
    if not candidates:
        return list(messages), 0, 0
    step = max(int(budget_tokens * STEP_SHARE), 1)
    sizes = _unit_sizes(messages, candidates)
    # Tokens to drop, rounded up to whole steps: constant while the conversation grows within a step.
    target = -(-(full - budget_tokens) // step) * step
    cut = 0
    while True:
        dropped, cut = 0, 0
        while cut < len(candidates) and dropped < target:
            dropped += sizes[cut]
            cut += 1
        kept = [m for i, m in enumerate(messages) if i not in {j for unit in candidates[:cut] for j in unit}]
        if cut == len(candidates) or measure(kept) <= budget_tokens:
            return kept, full - measure(kept), cut
        target += step

"""Issue 17.3: every rewrite of a conversation is prefix-stable across turns (Hypothesis, random sessions).

A session is built turn by turn the way IDEs and agents send it (system prompt, user turns with IDE
boilerplate, pasted and re-pasted files, edit requests, tool rounds with oversized results). Each
request resends the whole conversation so far. With every reduction on — per-message caps, boilerplate
stripping, file de-duplication, trimming, code mode, diff-first — the rewritten request N must be a
byte prefix of the rewritten request N+1 whenever trimming stayed on the same step, trimming may only
advance, and it advances at most once per half window of growth.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.reduction import Switches, reduce_messages
from routing.reduction.caps import Caps
from routing.reduction.common import messages_tokens
from routing.reduction.trim import STEP_SHARE

ALL_ON = Switches(
    strip_ide_boilerplate=True, dedupe_files=True, trim_context=True, diff_first_edits=True, code_mode=True
)
SMALL_CAPS = Caps(system=1_500, user=1_200, tool=600)
RULES = "<rules>\nAlways use type hints. Prefer small pure functions. Never commit secrets.\n</rules>"
PREAMBLE = (
    "Please also follow these instructions in all of your responses if relevant to my query. "
    "No need to acknowledge these instructions directly in your response."
)
FILES = ["\n".join(f"def f{n}_{i}(x):\n    return x * {i} + {n}" for i in range(12 + 3 * n)) for n in range(4)]

Message = dict[str, Any]


def _file_block(n: int) -> str:
    return f"```python app/mod{n}.py\n{FILES[n]}\n```"


user_text = st.one_of(
    st.text(alphabet="abcdefghij ", min_size=1, max_size=80).map(lambda t: f"question: {t}"),
    st.integers(0, 3).map(lambda n: f"Fix the bug in mod{n}:\n{_file_block(n)}"),
    st.integers(0, 3).map(lambda n: f"{PREAMBLE}\n{RULES}\n\n<user_query>\nrefactor mod{n}\n</user_query>"),
    st.integers(1, 4000).map(lambda size: "paste: " + "p" * size),
    st.just("rename the helper and update the callers"),
)
tool_result = st.one_of(
    st.integers(0, 3).map(_file_block),
    st.integers(1, 3000).map(lambda size: "log line\n" * (size // 9 + 1)),
)
step = st.one_of(
    st.tuples(st.just("user"), user_text),
    st.tuples(st.just("assistant"), st.text(alphabet="klmnop ", min_size=1, max_size=300)),
    st.tuples(st.just("tools"), st.lists(tool_result, min_size=1, max_size=3)),
)


def build_session(system: str, steps: list[tuple[str, Any]]) -> tuple[list[Message], list[int]]:
    """The whole conversation and the lengths at which the client sent a request."""
    ids = itertools.count()
    messages: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": "the task"}]
    sends = [len(messages)]
    for kind, payload in steps:
        if kind == "user":
            if messages[-1]["role"] == "user":
                messages.append({"role": "assistant", "content": "ok"})
            messages.append({"role": "user", "content": payload})
            sends.append(len(messages))
        elif kind == "assistant":
            messages.append({"role": "assistant", "content": payload})
        else:
            calls = [f"call_{next(ids)}" for _ in payload]
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": c, "type": "function", "function": {"name": "read", "arguments": "{}"}} for c in calls
                    ],
                }
            )
            messages += [{"role": "tool", "tool_call_id": c, "content": r} for c, r in zip(calls, payload, strict=True)]
            sends.append(len(messages))  # an agent sends the results back at once
    return messages, sends


def wire(messages: list[Message]) -> list[bytes]:
    return [orjson.dumps(m, option=orjson.OPT_SORT_KEYS) for m in messages]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    system=st.sampled_from(["You are a coding agent.", f"You are Cursor.\n{RULES}", "s" * 2_000]),
    steps=st.lists(step, min_size=2, max_size=30),
    budget=st.integers(400, 6_000),
)
def test_every_rewrite_is_prefix_stable_across_turns(system, steps, budget):
    conversation, sends = build_session(system, steps)
    previous: list[bytes] | None = None
    previous_step = 0
    previous_fits = True
    advances = 0
    for end in sends:
        reduced = reduce_messages(conversation[:end], ALL_ON, budget_tokens=budget, message_caps=SMALL_CAPS)
        sent = wire(reduced.messages)
        fits = messages_tokens(reduced.messages) <= budget
        assert reduced.trimmed_units >= previous_step, "trimming never moves back"
        if previous is not None:
            if reduced.trimmed_units == previous_step:
                assert sent[: len(previous)] == previous, "turn N's rewrite must be a prefix of turn N+1's"
            elif fits and previous_fits:
                # Steps are coarse; only when even the untrimmable part (system, task, last turn) overflows
                # does every turn drop the newest droppable unit (and the upstream reports the overflow).
                advances += 1
        previous, previous_step, previous_fits = sent, reduced.trimmed_units, fits
    capped_total = messages_tokens(reduce_messages(conversation, Switches(), message_caps=SMALL_CAPS).messages)
    assert advances <= capped_total // max(int(budget * STEP_SHARE), 1) + 1


def test_without_trimming_the_last_user_turn_and_tool_chain_are_intact():
    conversation, _ = build_session("You are a coding agent.", [("tools", ["x" * 100]), ("user", "and now?")])
    reduced = reduce_messages(conversation, ALL_ON, budget_tokens=10**6, message_caps=SMALL_CAPS)
    assert reduced.trimmed_units == 0
    assert reduced.messages[-1]["content"] == "and now?"
    assert [m["role"] for m in reduced.messages] == [m["role"] for m in conversation]

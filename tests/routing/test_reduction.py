"""Token reduction transforms: each on realistic IDE traffic, plus "never lose unseen content" properties."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.adapters.base import Deployment, ProviderConfig
from routing.reduction import Switches, context_budget, reduce_messages
from routing.reduction.boilerplate import PLACEHOLDER, strip_ide_boilerplate
from routing.reduction.common import digest, message_text, messages_tokens
from routing.reduction.dedupe import REFERENCE_RE, dedupe_files, find_units
from routing.reduction.fences import find_fences, open_fence
from routing.reduction.instructions import (
    CODE_MODE_INSTRUCTION,
    DIFF_FIRST_INSTRUCTION,
    add_code_mode,
    diff_first_saving,
    edit_request,
    is_diff,
)
from routing.reduction.output import StreamNormalizer, normalize_answer
from routing.reduction.trim import drop_order, trim_context, units

APP_PY = "import os\n\n\ndef load(path: str) -> str:\n" + "".join(
    f"    value_{n} = os.environ.get('KEY_{n}', 'default-{n}')\n" for n in range(12)
)
RULES = (
    "<rules>\nAlways use type hints. Prefer small pure functions. Never commit secrets. "
    "Write tests for every bug fix.\n</rules>"
)
PREAMBLE = (
    "Please also follow these instructions in all of your responses if relevant to my query. "
    "No need to acknowledge these instructions directly in your response."
)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def cursor_turn(n: int) -> dict[str, str]:
    return user(f"{PREAMBLE}\n{RULES}\n\n<user_query>\nquestion {n}: why does load() ignore KEY_{n}?\n</user_query>")


# -- boilerplate -----------------------------------------------------------------------------------


def test_it_strips_repeated_ide_blocks_and_keeps_the_first():
    messages = [{"role": "system", "content": "You are Cursor."}]
    for n in range(4):
        messages += [cursor_turn(n), assistant(f"answer {n} {RULES}")]
    result, saved = strip_ide_boilerplate(messages)
    assert message_text(result[1]) == message_text(messages[1])  # first occurrence intact
    for n in (1, 2, 3):
        text = message_text(result[1 + 2 * n])
        assert "<rules>" not in text and f"question {n}" in text
        # The untagged preamble is cut from its third message on (counted causally: prefix stability).
        assert (PREAMBLE in text) == (n == 1)
    assert all(result[i] is messages[i] for i in range(2, len(messages), 2))  # assistant messages untouched
    assert saved == messages_tokens(messages) - messages_tokens(result) > 0


def test_untagged_paragraphs_need_three_messages_and_code_is_left_alone():
    paragraph = "Here is my traceback from the failing test run, with the full stack and the locals dump " * 2
    code = f"```python\n{paragraph}\n```"
    twice = [user(paragraph), user(paragraph + "\n\nagain")]
    assert strip_ide_boilerplate(twice) == (twice, 0)
    thrice = [user(paragraph), user(paragraph + "\n\nagain"), user(paragraph + "\n\nonce more")]
    stripped, _ = strip_ide_boilerplate(thrice)
    assert [message_text(m) for m in stripped] == [paragraph, paragraph + "\n\nagain", "once more"]
    fenced = [user(code), user(code), user(code)]
    assert strip_ide_boilerplate(fenced)[1] == 0


def test_a_message_that_was_only_boilerplate_keeps_a_placeholder():
    messages = [user(RULES + "\nfirst"), user(RULES)]
    result, _ = strip_ide_boilerplate(messages)
    assert message_text(result[1]) == PLACEHOLDER


# -- de-duplication ---------------------------------------------------------------------------------


def test_it_replaces_a_repeated_file_by_a_reference_to_the_earlier_message():
    messages = [
        {"role": "system", "content": "sys"},
        user(f"Look at this:\n```python app/load.py\n{APP_PY}```\nWhat is wrong?"),
        assistant("It reads the wrong key."),
        user(f"Here it is again:\n```python app/load.py\n{APP_PY}```\nfix it"),
    ]
    result, saved = dedupe_files(messages)
    assert result[1] is messages[1]
    text = message_text(result[3])
    match = REFERENCE_RE.search(text)
    assert match and match.group("n") == "2" and "app/load.py" in match.group("what")
    assert text.startswith("Here it is again:\n[gateway:") and text.endswith("\nfix it")
    assert saved > 50


def test_tagged_files_keep_their_tags_and_tool_results_are_compared_whole():
    block = f'<file_content path="src/load.py">\n{APP_PY}</file_content>'
    messages = [
        user(block),
        {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": APP_PY},
        user(f"again\n{block}"),
    ]
    result, _ = dedupe_files(messages)
    assert REFERENCE_RE.search(message_text(result[2])).group("n") == "1"
    text = message_text(result[3])
    assert text.startswith('again\n<file_content path="src/load.py">\n[gateway:')
    assert text.endswith(")]\n</file_content>")


def test_changed_or_small_files_are_sent_again():
    changed = APP_PY.replace("default-3", "fallback-3")
    small = "```python\nx = 1\n```"
    messages = [user(f"```python\n{APP_PY}```"), user(f"```python\n{changed}```"), user(small), user(small)]
    assert dedupe_files(messages) == (messages, 0)


def test_text_parts_are_handled():
    part = {"type": "text", "text": f"```python\n{APP_PY}```"}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": "user", "content": [part]}, {"role": "user", "content": [image, part]}]
    result, _ = dedupe_files(messages)
    assert result[1]["content"][0] is image and REFERENCE_RE.search(result[1]["content"][1]["text"])


# -- trimming ---------------------------------------------------------------------------------------


def _call(call_id: str) -> dict[str, object]:
    return {"id": call_id, "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}


def test_it_drops_the_oldest_turns_and_keeps_system_and_the_last_turn():
    messages = [{"role": "system", "content": "system prompt " * 20}]
    for n in range(10):
        messages += [user(f"question {n} " + "x" * 400), assistant(f"answer {n} " + "y" * 400)]
    messages.append(user("final question"))
    kept, saved = trim_context(messages, 600)
    assert kept[0] is messages[0] and kept[-1] is messages[-1]
    assert messages_tokens(kept) <= 600 and saved == messages_tokens(messages) - messages_tokens(kept)
    assert kept[1]["role"] == "user"  # whole turns go: the history still starts with a question
    assert trim_context(messages, 10**6) == (messages, 0)


def test_it_never_separates_a_tool_call_from_its_results():
    messages = [
        {"role": "system", "content": "agent"},
        user("fix the tests"),
        {"role": "assistant", "content": None, "tool_calls": [_call("a"), _call("b")]},
        {"role": "tool", "tool_call_id": "a", "content": "A" * 800},
        {"role": "tool", "tool_call_id": "b", "content": "B" * 800},
        {"role": "assistant", "content": None, "tool_calls": [_call("c")]},
        {"role": "tool", "tool_call_id": "c", "content": "C" * 800},
        {"role": "assistant", "content": "done"},
    ]
    assert units(messages) == [(1,), (2, 3, 4), (5, 6), (7,)]
    assert drop_order(messages) == [(2, 3, 4), (5, 6)]  # inside the last turn: oldest rounds, never the last unit
    kept, _ = trim_context(messages, 300)
    assert [m.get("tool_call_id") or m["role"] for m in kept] == ["system", "user", "assistant", "c", "assistant"]


def test_context_budget_leaves_room_for_output_and_tools():
    provider = ProviderConfig(1, "p", "openai", "http://x", None, 1, 1, 1, 1)
    deployment = Deployment(1, "m", "m", provider, Decimal(1), Decimal(1), 32_000, 2_000)
    assert context_budget(deployment, {}) == 30_400 - 2_000
    assert context_budget(deployment, {"max_tokens": 500, "tools": [{"x": "y" * 400}]}) == 30_400 - 500 - 103


# -- instructions and output --------------------------------------------------------------------------


def test_code_mode_extends_the_system_prompt():
    with_system, cost = add_code_mode([{"role": "system", "content": "Be terse."}, user("hi")])
    assert with_system[0]["content"] == f"Be terse.\n\n{CODE_MODE_INSTRUCTION}" and cost < 0
    without, _ = add_code_mode([user("hi")])
    assert without[0] == {"role": "system", "content": CODE_MODE_INSTRUCTION}


def test_diff_first_only_for_edits_of_provided_code():
    code = user(f"```python\n{APP_PY}```")
    assert edit_request([code, assistant("ok"), user("Rename load to read_config")]) is not None
    assert edit_request([code, assistant("ok"), user("What does this do?")]) is None
    assert edit_request([user("Refactor my app please")]) is None
    reduced = reduce_messages([code, user("fix the default of KEY_3")], Switches(diff_first_edits=True))
    assert message_text(reduced.messages[-1]).endswith(DIFF_FIRST_INSTRUCTION)
    assert reduced.tokens_saved["diff_first"] < 0 and reduced.edit is not None
    diff = "```diff\n--- a/load.py\n+++ b/load.py\n@@ -5 +5 @@\n-    x\n+    y\n```"
    assert is_diff(diff) and not is_diff(f"```python\n{APP_PY}```")
    assert diff_first_saving(reduced.edit, diff) > 0
    assert diff_first_saving(reduced.edit, APP_PY) == 0


def test_code_mode_normalises_answers():
    assert normalize_answer("Sure:  \n```python\nx = 1   \n") == "Sure:\n```python\nx = 1\n```"
    assert normalize_answer("````md\n```\ninner\n```\n````\ntail  ") == "````md\n```\ninner\n```\n````\ntail"
    assert normalize_answer("~~~\ncode") == "~~~\ncode\n~~~"
    assert open_fence("```\na\n```\n") is None


_pieces = st.lists(st.sampled_from(["```", "py", "\n", " ", "  ", "\t", "x = 1", "~~~", "```python\n", "text"]))


@settings(deadline=None)
@given(_pieces, st.data())
def test_streamed_normalisation_equals_the_whole_answer(pieces, data):
    text = "".join(pieces)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=8)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    normalizer = StreamNormalizer()
    streamed = "".join(normalizer.feed(chunk) for chunk in chunks) + normalizer.finish()
    assert streamed == normalize_answer(text)


# -- the pipeline --------------------------------------------------------------------------------------


def test_switches_off_change_nothing():
    messages = [cursor_turn(1), cursor_turn(2)]
    reduced = reduce_messages(messages, Switches())
    assert reduced.messages == messages and reduced.tokens_saved == {}


def test_the_pipeline_records_savings_per_feature():
    messages = [{"role": "system", "content": "You are Cursor."}]
    for n in range(6):
        messages += [
            user(f"{PREAMBLE}\n{RULES}\n```python app/load.py\n{APP_PY}```\nquestion {n} " + "z" * 300),
            assistant("answer " + "w" * 300),
        ]
    messages.append(user(f"{RULES}\nfix KEY_5"))
    switches = Switches(True, True, True, True, True)
    reduced = reduce_messages(messages, switches, budget_tokens=700)
    saved = reduced.tokens_saved
    assert saved["trim_context"] > 0 and saved["dedupe_files"] > 0 and saved["strip_ide_boilerplate"] > 0
    assert saved["code_mode"] < 0
    _assert_references_resolve(reduced.messages)


# -- properties: never lose content the model has not seen ------------------------------------------

_files = st.lists(st.text(alphabet="abcdefgh \n", min_size=220, max_size=320), min_size=1, max_size=4)


def _body(text: str) -> str:
    return text.strip()


def _assert_references_resolve(messages: list[dict[str, object]]) -> None:
    texts = [message_text(m) for m in messages]
    for index, text in enumerate(texts):
        for match in REFERENCE_RE.finditer(text):
            target = int(match.group("n")) - 1
            assert 0 <= target <= index


def _conversations(files: list[str]) -> st.SearchStrategy[list[dict[str, object]]]:
    piece = st.one_of(
        st.sampled_from([f"```\n{f}\n```" for f in files]),
        st.sampled_from([f'<file_content path="f{n}.py">\n{f}\n</file_content>' for n, f in enumerate(files)]),
        st.text(alphabet="xyz ", max_size=30),
    )
    message = st.builds(
        lambda role, parts: {"role": role, "content": "\n".join(parts)},
        st.sampled_from(["user", "assistant", "tool"]),
        st.lists(piece, min_size=1, max_size=3),
    )
    return st.lists(message, min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_files.flatmap(_conversations))
def test_dedupe_never_loses_unseen_content(messages):
    result, _ = dedupe_files(messages)
    outputs = [message_text(m) for m in result]
    for index, message in enumerate(messages):
        original = message_text(message)
        for unit in find_units(original, whole=message["role"] == "tool"):
            if unit.body in outputs[index]:
                continue
            references = [int(m.group("n")) - 1 for m in REFERENCE_RE.finditer(outputs[index])]
            assert any(0 <= j <= index and unit.body in outputs[j] for j in references), unit.body[:40]


def _rounds() -> st.SearchStrategy[list[dict[str, object]]]:
    counter = iter(range(10**9))

    def tool_round(results: int, size: int) -> list[dict[str, object]]:
        ids = [f"call{next(counter)}" for _ in range(results)]
        call = {"role": "assistant", "content": None, "tool_calls": [_call(i) for i in ids]}
        return [call, *({"role": "tool", "tool_call_id": i, "content": "r" * size} for i in ids)]

    turn = st.one_of(
        st.integers(1, 600).map(lambda size: [user("q" * size)]),
        st.integers(1, 600).map(lambda size: [assistant("a" * size)]),
        st.builds(tool_round, st.integers(1, 3), st.integers(1, 600)),
        st.builds(lambda: [{"role": "system", "content": "mid-conversation system note"}]),
    )
    return st.lists(turn, min_size=1, max_size=12).map(
        lambda turns: [{"role": "system", "content": "sys"}, *(m for t in turns for m in t)]
    )


@settings(max_examples=200, deadline=None)
@given(_rounds(), st.integers(20, 2000))
def test_trimming_keeps_system_last_turn_and_tool_pairs(messages, budget):
    kept, saved = trim_context(messages, budget)
    ids = [id(m) for m in kept]
    assert ids == sorted(ids, key=[id(m) for m in messages].index)  # an ordered subsequence
    assert saved >= 0
    assert all(any(k is m for k in kept) for m in messages if m["role"] == "system")
    last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    assert last_user is None or any(k is last_user for k in kept)
    assert any(k is messages[-1] for k in kept) or messages[-1]["role"] == "tool"
    calls = {c["id"] for m in kept for c in m.get("tool_calls") or []}
    results = {m["tool_call_id"] for m in kept if m["role"] == "tool"}
    assert calls == results
    if messages_tokens(kept) > budget:  # only when nothing more may be dropped
        assert len(kept) == len(messages) - sum(len(u) for u in drop_order(messages))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_files.flatmap(_conversations), st.integers(50, 600))
def test_the_pipeline_only_references_messages_it_still_sends(messages, budget):
    reduced = reduce_messages(messages, Switches(True, True, True, False, False), budget_tokens=budget)
    _assert_references_resolve(reduced.messages)
    sent = [message_text(m) for m in reduced.messages]
    for index, text in enumerate(sent):
        for match in REFERENCE_RE.finditer(text):
            key = re.search(r"sha256:(\w+)", text[match.end() :]).group(1)
            source = sent[int(match.group("n")) - 1]
            assert any(digest(u.body) == key for u in find_units(source, whole=True)), (index, key)


@settings(deadline=None)
@given(_pieces)
def test_the_fence_scanner_and_the_stream_tracker_agree(pieces):
    text = "".join(pieces)
    fences = find_fences(text)
    assert (bool(fences) and not fences[-1].closed) == (open_fence(text) is not None)


def test_fences_are_found_with_their_info_and_body():
    [fence] = find_fences("a\n```python app.py\nprint(1)\n```\nb")
    assert (fence.language, fence.body, fence.closed) == ("python", "print(1)\n", True)
    [open_block] = find_fences("```\nunterminated")
    assert not open_block.closed and open_block.body == "unterminated"


@pytest.mark.parametrize("info", ["12:40:app/load.py", "python app/load.py", "app/load.py"])
def test_file_labels_come_from_the_fence_info(info):
    [unit] = find_units(f"```{info}\n{APP_PY}```")
    assert unit.label == "app/load.py"


def test_the_token_reduction_benchmark_replays_its_session():
    import json

    from bench.token_reduction import FIXTURE, measure, render, replay

    requests = replay(json.loads(FIXTURE.read_text(encoding="utf-8")))
    assert len(requests) >= 30
    data = measure(requests)
    rows = {row["scenario"]: row for row in data["scenarios"]}
    assert rows["dedupe_files"]["saved_tokens"] > 0 and rows["strip_ide_boilerplate"]["saved_tokens"] > 0
    assert data["diff_first"]["detected"] == data["diff_first"]["edit_requests"] > 0
    assert "| dedupe_files |" in render(data)

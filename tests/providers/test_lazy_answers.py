"""Whole OpenAI answers: usage read from the tail, the rest parsed only when asked for (pure).

``reference`` parses the answer whole, as ``parse_chat_response`` did before; the lazy reading
must agree with it on usage, text and finish reason for every answer shape, including text that
spells ``"usage"`` and braces, token details nested in ``usage``, keys after it, and a ``usage``
nested in a later object (Groq's ``x_groq``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.adapters.base import Completion, Usage
from providers.adapters.openai import TAIL_READ_BYTES, parse_chat_response, parse_usage, trailing_usage


def reference(raw: bytes) -> tuple[Usage | None, str, str | None]:
    data = orjson.loads(raw)
    choice = data["choices"][0] if data.get("choices") else {}
    message = choice.get("message") or {}
    content = message.get("content", choice.get("text"))
    return parse_usage(data.get("usage")), content if isinstance(content, str) else "", choice.get("finish_reason")


pieces = st.sampled_from([*'ab "usage":{}[],\\\n', '"usage":{"prompt_tokens":1}', '"usage": {"x": {}}'])
tricky = st.lists(pieces, max_size=12).map("".join)
usages = st.one_of(
    st.none(),
    st.just("not an object"),
    st.fixed_dictionaries(
        {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6)},
        optional={
            "total_tokens": st.integers(0, 10**6),
            "prompt_tokens_details": st.fixed_dictionaries({"cached_tokens": st.integers(0, 100)}),
            "completion_tokens_details": st.fixed_dictionaries(
                {"reasoning_tokens": st.integers(0, 9), "audio_tokens": st.just(0)}
            ),
            "prompt_cache_hit_tokens": st.integers(0, 9),
        },
    ),
)
trailers = st.fixed_dictionaries(
    {},
    optional={
        "service_tier": st.just("default"),
        "system_fingerprint": st.one_of(st.none(), tricky),
        "x_groq": st.fixed_dictionaries({"id": st.just("req_1"), "usage": st.just({"queue_time": 0.1})}),
    },
)


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(tricky, st.none()))}
    if draw(st.booleans()):
        message["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": draw(tricky)}}]
    choice = {"index": 0, "message": message, "finish_reason": draw(st.sampled_from(["stop", "length", None]))}
    padding = "x" * TAIL_READ_BYTES if draw(st.booleans()) else ""  # large answers are read from the tail
    body: dict[str, Any] = {
        "id": f"chatcmpl-1{padding}",
        "object": "chat.completion",
        "model": "m",
        "choices": [choice],
    }
    usage = draw(usages)
    if usage is not None:
        body["usage"] = usage
    body.update(draw(trailers))
    if draw(st.booleans()):
        return json.dumps(body, indent=draw(st.sampled_from([None, 1]))).encode()
    return orjson.dumps(body)


@settings(max_examples=500, deadline=None)
@given(raw=answers())
def test_the_lazy_answer_agrees_with_the_whole_parse(raw: bytes) -> None:
    usage, text, finish = reference(raw)
    tail = trailing_usage(raw)
    assert tail is None or parse_usage(tail) == usage
    completion = parse_chat_response(raw)
    assert completion.body == raw and completion.usage == usage
    assert completion.estimate_chars() == (0 if usage is not None else len(text))
    assert completion.text == text and completion.finish_reason == finish


def test_a_large_answer_with_usage_last_is_not_parsed_until_asked() -> None:
    content = "hi " * TAIL_READ_BYTES
    raw = orjson.dumps(
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 2}},
            "system_fingerprint": "fp_1",
        }
    )
    completion = parse_chat_response(raw)
    assert not completion.is_read
    assert completion.usage == Usage(prompt_tokens=3, completion_tokens=1, cached_prompt_tokens=2)
    assert completion.estimate_chars() == 0 and not completion.is_read  # usage reported: nothing to estimate
    assert completion.finish_reason == "stop" and completion.is_read and completion.text == content


def test_a_small_answer_is_parsed_whole() -> None:
    """Under ``TAIL_READ_BYTES`` orjson parses the whole answer in less CPU than the tail costs."""
    raw = b'{"choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}],'
    completion = parse_chat_response(raw + b'"usage":{"prompt_tokens":3,"completion_tokens":1}}')
    assert completion.is_read and completion.text == "hi" and completion.usage == Usage(3, 1)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"choices":[],"x":{"usage":{"prompt_tokens":1,"completion_tokens":1}}}',  # not the top-level usage
        b'{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1},"note":"}"}',  # a brace after it
        b' {"usage":{"prompt_tokens":1,"completion_tokens":1}}',  # not an object at the first byte
        b'{"usage":"none"}',
        b'{"usage":{"prompt_tokens":1,"completion_tokens":1}',  # truncated
    ],
)
def test_tails_that_do_not_prove_a_top_level_usage_are_not_read(raw: bytes) -> None:
    assert trailing_usage(raw) is None


def test_a_malformed_answer_without_a_readable_tail_still_fails() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        parse_chat_response(b'{"choices": [')


def test_an_unreadable_body_asked_for_its_text_has_none() -> None:
    completion = Completion.unread(b"{not json", Usage(1, 1), lambda raw: ("", None))
    assert completion.text == "" and completion.finish_reason is None

"""OpenAI ⇄ Anthropic Messages translation: pure functions, no I/O."""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_platform.errors import GatewayError
from providers.adapters.anthropic import SseDecoder, StreamTranslator, build_headers, build_request
from providers.adapters.anthropic_translate import (
    apply_cache_control,
    build_messages_request,
    finish_reason,
    merge_turns,
    parse_messages_response,
    translate_tool_choice,
)
from providers.adapters.base import Deployment, ProviderConfig

PROVIDER = ProviderConfig(
    id=1,
    name="claude",
    kind="anthropic",
    base_url="https://api.anthropic.com",
    api_key="sk-test",
    connect_timeout=1.0,
    read_timeout=1.0,
    total_timeout=1.0,
    max_connections=1,
)


def deployment(max_output_tokens: int | None = None) -> Deployment:
    return Deployment(
        model_id=1,
        name="sonnet",
        upstream_model="claude-sonnet-4-5",
        provider=PROVIDER,
        input_cost_per_million=Decimal(3),
        output_cost_per_million=Decimal(15),
        context_window=200_000,
        max_output_tokens=max_output_tokens,
    )


def build(body: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    return build_messages_request(deployment(), body, stream=stream)


TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


# --------------------------------------------------------------------------- request


def test_it_moves_system_and_developer_messages_to_top_level_system() -> None:
    payload = build(
        {
            "model": "sonnet",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use Python."}]},
                {"role": "user", "content": "hi"},
            ],
        }
    )
    assert payload["model"] == "claude-sonnet-4-5"
    assert payload["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use Python."}]
    assert payload["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "stream" not in payload


def test_it_merges_consecutive_same_role_messages() -> None:
    payload = build(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": [{"type": "text", "text": "d"}]},
                {"role": "user", "content": "e"},
            ]
        }
    )
    assert [m["role"] for m in payload["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in payload["messages"][0]["content"]] == ["a", "b"]
    assert [b["text"] for b in payload["messages"][1]["content"]] == ["c", "d"]


def test_it_drops_empty_text_and_empty_turns() -> None:
    payload = build(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "  "},
                {"role": "user", "content": "b"},
            ]
        }
    )
    assert payload["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    with pytest.raises(GatewayError) as failed:
        build({"messages": [{"role": "system", "content": "only a system prompt"}]})
    assert failed.value.status == 400


def test_it_translates_images() -> None:
    payload = build(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
                    ],
                }
            ]
        }
    )
    blocks = payload["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    for bad in ("ftp://example.com/x.png", "data:image/png,notbase64"):
        with pytest.raises(GatewayError) as failed:
            build({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": bad}}]}]})
        assert failed.value.status == 400


def test_it_rejects_unsupported_content_parts() -> None:
    with pytest.raises(GatewayError) as failed:
        build({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})
    assert failed.value.status == 400 and "input_audio" in failed.value.message


def test_it_translates_tools_and_tool_choice() -> None:
    payload = build({"messages": [{"role": "user", "content": "x"}], "tools": [TOOL], "tool_choice": "required"})
    assert payload["tools"] == [
        {
            "name": "search",
            "description": "Search the web",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    assert payload["tool_choice"] == {"type": "any"}
    bare = build(
        {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}]}
    )
    assert bare["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    assert "tool_choice" not in bare
    no_tools = build({"messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"})
    assert "tools" not in no_tools and "tool_choice" not in no_tools


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "search"}}, None, {"type": "tool", "name": "search"}),
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
def test_it_maps_tool_choice(choice: object, parallel: object, expected: object) -> None:
    assert translate_tool_choice(choice, parallel) == expected


def test_it_translates_tool_calls_and_merges_tool_results() -> None:
    payload = build(
        {
            "messages": [
                {"role": "user", "content": "weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "wx", "arguments": '{"c":"Paris"}'}},
                        {"id": "call_2", "type": "function", "function": {"name": "wx", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
                {"role": "user", "content": "thanks"},
            ]
        }
    )
    user, assistant, results = payload["messages"]
    assert user["role"] == "user"
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "wx", "input": {"c": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "wx", "input": {}},
        ],
    }
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
            {"type": "text", "text": "thanks"},
        ],
    }


def test_it_puts_tool_results_first_in_a_merged_user_turn() -> None:
    merged = merge_turns(
        [
            ("user", [{"type": "text", "text": "note"}]),
            ("user", [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]),
        ]
    )
    assert [b["type"] for b in merged[0]["content"]] == ["tool_result", "text"]


def test_it_rejects_bad_tool_call_arguments_and_tool_messages_without_id() -> None:
    bad_args = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}
    for messages in (
        [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [bad_args]}],
        [{"role": "tool", "content": "r"}],
    ):
        with pytest.raises(GatewayError) as failed:
            build({"messages": messages})
        assert failed.value.status == 400


def test_it_translates_sampling_params_and_drops_openai_only_ones() -> None:
    payload = build(
        {
            "messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 100,
            "max_tokens": 5,
            "temperature": 1.7,
            "top_p": 0.9,
            "stop": "END",
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u-42",
            "n": 1,
            "presence_penalty": 0.5,
            "logprobs": True,
            "skill": "review",
            "x_gateway_prompt_caching": True,
        },
        stream=True,
    )
    assert payload == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
        "max_tokens": 100,
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-42"},
        "stream": True,
    }
    assert build({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"]})["stop_sequences"] == ["a", "b"]


def test_it_defaults_max_tokens() -> None:
    body = {"messages": [{"role": "user", "content": "x"}]}
    assert build_messages_request(deployment(), body, stream=False)["max_tokens"] == 4096
    assert build_messages_request(deployment(8192), body, stream=False)["max_tokens"] == 8192
    assert build_messages_request(deployment(8192), {**body, "max_tokens": 7}, stream=False)["max_tokens"] == 7


def test_it_rejects_n_above_one() -> None:
    with pytest.raises(GatewayError) as failed:
        build({"messages": [{"role": "user", "content": "x"}], "n": 3})
    assert failed.value.status == 400 and failed.value.param == "n"
    assert "not supported" in failed.value.message


def test_a_conversation_gets_breakpoints_on_its_last_two_user_turns_within_the_limit() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "two"},
        ],
        "tools": [TOOL],
    }
    on = apply_cache_control(build(body), enabled=True)
    assert on["messages"][0]["content"][-1]["cache_control"] == {"type": "ephemeral"}  # "one": the earlier turn
    assert on["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}  # "two": this turn
    assert "cache_control" not in orjson.dumps(on["messages"][1]).decode()
    assert orjson.dumps(on).decode().count("cache_control") == 4  # tools, system, two user turns
    # A request that already uses breakpoints keeps them, and the total stays within four.
    preset = build(body)
    preset["messages"][1]["content"] = [{"type": "text", "text": "answer", "cache_control": {"type": "ephemeral"}}]
    preset["system"] = [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]
    preset["tools"][0]["cache_control"] = {"type": "ephemeral"}
    assert orjson.dumps(apply_cache_control(preset, enabled=True)).decode().count("cache_control") == 4


def test_it_marks_the_stable_prefix_for_prompt_caching() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "a"},
            {"role": "system", "content": "b"},
            {"role": "user", "content": "x"},
        ],
        "tools": [TOOL, {"type": "function", "function": {"name": "other"}}],
    }
    off = apply_cache_control(build(body), enabled=False)
    assert "cache_control" not in orjson.dumps(off).decode()
    on = apply_cache_control(build(body), enabled=True)
    assert on["system"][0] == {"type": "text", "text": "a"}
    assert on["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in on["tools"][0]
    assert on["tools"][1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in orjson.dumps(on["messages"]).decode()  # one message: nothing to reuse
    # The adapter takes the switch from the body and never forwards the key.
    switched = build_request(deployment(), {**body, "x_gateway_prompt_caching": True}, stream=False)
    assert switched["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert "x_gateway_prompt_caching" not in switched
    assert "cache_control" not in orjson.dumps(build_request(deployment(), body, stream=False)).decode()


def test_it_sends_anthropic_headers() -> None:
    headers = build_headers(PROVIDER)
    assert headers["x-api-key"] == "sk-test" and headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json" and "X-Request-Id" in headers
    assert "x-api-key" not in build_headers(dataclasses.replace(PROVIDER, api_key=None))


_text = st.text(min_size=1, max_size=20).filter(lambda s: bool(s.strip()))


@given(st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]), _text), min_size=1, max_size=12))
def test_any_text_conversation_alternates_and_keeps_all_text(messages: list[tuple[str, str]]) -> None:
    body = {"messages": [{"role": role, "content": text} for role, text in messages]}
    if all(role == "system" for role, _ in messages):
        with pytest.raises(GatewayError):
            build(body)
        return
    payload = build(body)
    roles = [m["role"] for m in payload["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))
    texts = [b["text"] for m in payload["messages"] for b in m["content"]]
    assert texts == [text for role, text in messages if role != "system"]
    assert [b["text"] for b in payload.get("system", [])] == [text for role, text in messages if role == "system"]


# --------------------------------------------------------------------------- response


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
        (None, None),
    ],
)
def test_it_maps_stop_reasons(stop_reason: str | None, expected: str | None) -> None:
    assert finish_reason(stop_reason) == expected


def test_it_parses_a_text_answer_with_cache_usage() -> None:
    raw = orjson.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 1000,
            },
        }
    )
    completion = parse_messages_response(raw, model="sonnet", created=123)
    body = orjson.loads(completion.body)
    assert body["id"] == "msg_1" and body["object"] == "chat.completion"
    assert body["model"] == "sonnet" and body["created"] == 123
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 1110,
        "completion_tokens": 5,
        "total_tokens": 1115,
        "prompt_tokens_details": {"cached_tokens": 1000},
        "cache_creation_input_tokens": 100,
    }
    assert completion.text == "Hello there" and completion.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1110, 5)
    assert completion.usage.cached_prompt_tokens == 1000


def test_it_parses_tool_use_and_missing_usage() -> None:
    raw = orjson.dumps(
        {
            "id": "msg_2",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "cats"}}],
            "stop_reason": "tool_use",
        }
    )
    completion = parse_messages_response(raw, model="sonnet", created=1)
    body = orjson.loads(completion.body)
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "search", "arguments": '{"q":"cats"}'}}
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in body and completion.usage is None


# --------------------------------------------------------------------------- stream


def sse(*events: dict[str, Any]) -> list[bytes]:
    lines: list[bytes] = []
    for event in events:
        lines += [f"event: {event['type']}\n".encode(), b"data: " + orjson.dumps(event) + b"\n", b"\n"]
    return lines


def run_stream(lines: list[bytes]) -> tuple[StreamTranslator, list[dict[str, Any]]]:
    decoder = SseDecoder()
    translator = StreamTranslator(provider="claude", model="sonnet", created=7)
    payloads: list[dict[str, Any]] = []
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            for chunk in translator.feed(orjson.loads(event.data)):
                assert chunk.data is not None
                payloads.append(orjson.loads(chunk.data))
    return translator, payloads


START = {
    "type": "message_start",
    "message": {
        "id": "msg_s",
        "usage": {
            "input_tokens": 20,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 30,
        },
    },
}


def test_stream_text_events_become_chunks() -> None:
    translator, payloads = run_stream(
        sse(
            START,
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "ping"},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}},
            {"type": "message_stop"},
        )
    )
    assert all(p["id"] == "msg_s" and p["object"] == "chat.completion.chunk" for p in payloads)
    assert all(p["model"] == "sonnet" and p["created"] == 7 for p in payloads)
    assert [p["choices"][0]["delta"] for p in payloads] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [p["choices"][0]["finish_reason"] for p in payloads] == [None, None, None, "length"]
    assert translator.finished
    usage = translator.usage_chunk()
    assert usage is not None and usage.usage_only and usage.data is not None
    final = orjson.loads(usage.data)
    assert final["choices"] == [] and final["id"] == "msg_s"
    assert final["usage"]["prompt_tokens"] == 50 and final["usage"]["completion_tokens"] == 2
    assert final["usage"]["prompt_tokens_details"] == {"cached_tokens": 30}
    assert usage.usage is not None and usage.usage.cached_prompt_tokens == 30


def test_stream_tool_use_events_become_tool_call_deltas() -> None:
    _, payloads = run_stream(
        sse(
            START,
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me look."}},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_a", "name": "search", "input": {}},
            },
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"q":'}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"x"}'}},
            {"type": "content_block_stop", "index": 1},
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_b", "name": "lookup", "input": {}},
            },
            {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
            {"type": "message_stop"},
        )
    )
    deltas = [p["choices"][0]["delta"] for p in payloads]
    tool_deltas = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert tool_deltas == [
        {"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "search", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"q":'}},
        {"index": 0, "function": {"arguments": '"x"}'}},
        {"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "lookup", "arguments": ""}},
        {"index": 1, "function": {"arguments": "{}"}},
    ]
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_error_event_raises_a_mapped_error() -> None:
    for kind, code in (("overloaded_error", "upstream_error"), ("api_error", "upstream_error")):
        error = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
        with pytest.raises(GatewayError) as failed:
            run_stream(sse(START, error))
        assert failed.value.status == 502 and failed.value.retryable and failed.value.code == code
        assert "Overloaded" in failed.value.message


def test_stream_without_usage_or_stop_is_flagged() -> None:
    start = {"type": "message_start", "message": {"id": "msg_n"}}
    translator, _ = run_stream(
        sse(start, {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}})
    )
    assert not translator.finished
    assert translator.usage_chunk() is None


def test_sse_decoder_handles_comments_multiline_data_and_missing_trailing_blank() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b": keep-alive\n") is None
    assert decoder.feed(b"event: x\r\n") is None
    assert decoder.feed(b'data: {"a":\n') is None
    assert decoder.feed(b"data: 1}\n") is None
    event = decoder.feed(b"\n")
    assert event is not None and event.event == "x" and orjson.loads(event.data) == {"a": 1}
    assert decoder.feed(b"data: {}") is None
    tail = decoder.flush()
    assert tail is not None and tail.data == "{}" and tail.event is None
    assert decoder.flush() is None

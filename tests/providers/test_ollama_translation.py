"""OpenAI ⇄ Ollama /api/chat translation: pure functions, no I/O."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gateway_platform.errors import GatewayError
from providers.adapters.base import Deployment, ProviderConfig
from providers.adapters.ollama import (
    StreamTranslator,
    build_chat_request,
    build_headers,
    finish_reason,
    parse_chat_response,
    parse_usage,
    select_tools,
)

PROVIDER = ProviderConfig(
    id=2,
    name="local",
    kind="ollama",
    base_url="http://127.0.0.1:11434",
    api_key=None,
    connect_timeout=1.0,
    read_timeout=1.0,
    total_timeout=1.0,
    max_connections=1,
)
DEPLOYMENT = Deployment(
    model_id=2,
    name="llama",
    upstream_model="llama3.1:8b",
    provider=PROVIDER,
    input_cost_per_million=Decimal(0),
    output_cost_per_million=Decimal(0),
    context_window=8192,
    max_output_tokens=None,
)
TOOL = {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}
OTHER = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
CALL_ID = re.compile(r"^call_[0-9a-f]{24}$")


def build(body: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    return build_chat_request(DEPLOYMENT, body, stream=stream)


def test_it_builds_a_chat_request_with_options() -> None:
    payload = build(
        {
            "model": "llama",
            "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 7,
            "stop": "END",
            "max_tokens": 64,
            "stream_options": {"include_usage": True},
            "skill": "review",
        },
        stream=True,
    )
    assert payload == {
        "model": "llama3.1:8b",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stream": True,
        "keep_alive": "5m",
        "options": {"temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["END"], "num_predict": 64},
    }
    assert build({"messages": [{"role": "user", "content": "x"}], "keep_alive": "1h"})["keep_alive"] == "1h"
    assert build({"messages": [{"role": "user", "content": "x"}]})["stream"] is False


def test_it_joins_text_parts_and_extracts_data_url_images() -> None:
    payload = build(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/AAA="}},
                        {"type": "text", "text": "is this"},
                    ],
                }
            ]
        }
    )
    assert payload["messages"] == [{"role": "user", "content": "what\nis this", "images": ["/9j/AAA="]}]
    with pytest.raises(GatewayError) as failed:
        build({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y"}}]}]})
    assert failed.value.status == 400


def test_it_translates_tool_calls_and_tool_results() -> None:
    payload = build(
        {
            "messages": [
                {"role": "user", "content": "find"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_9", "type": "function", "function": {"name": "search", "arguments": '{"q":"a"}'}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_9", "content": "found it"},
            ],
            "tools": [TOOL],
        }
    )
    assert payload["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "search", "arguments": {"q": "a"}}}],
    }
    assert payload["messages"][2] == {"role": "tool", "content": "found it", "tool_name": "search"}
    assert payload["tools"] == [TOOL]


def test_it_approximates_tool_choice() -> None:
    assert select_tools([TOOL, OTHER], "auto") == [TOOL, OTHER]
    assert select_tools([TOOL, OTHER], "none") == []
    assert select_tools([TOOL, OTHER], {"type": "function", "function": {"name": "lookup"}}) == [OTHER]
    assert select_tools(None, "required") == []


def test_it_maps_response_format_and_rejects_n() -> None:
    base = {"messages": [{"role": "user", "content": "x"}]}
    assert build({**base, "response_format": {"type": "json_object"}})["format"] == "json"
    schema = {"type": "object"}
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    assert build({**base, "response_format": fmt})["format"] == schema
    assert "format" not in build({**base, "response_format": {"type": "text"}})
    with pytest.raises(GatewayError):
        build({**base, "n": 2})


def test_it_only_sends_a_key_when_configured() -> None:
    assert "Authorization" not in build_headers(PROVIDER)


@pytest.mark.parametrize(
    ("done_reason", "tools", "expected"),
    [("stop", False, "stop"), ("length", False, "length"), ("stop", True, "tool_calls"), (None, False, "stop")],
)
def test_it_maps_finish_reasons(done_reason: str | None, tools: bool, expected: str) -> None:
    assert finish_reason(done_reason, tools) == expected


def test_usage_from_eval_counts() -> None:
    usage = parse_usage({"prompt_eval_count": 12, "eval_count": 3})
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (12, 3)
    cached = parse_usage({"eval_count": 3})  # prompt fully reused from Ollama's KV cache
    assert cached is not None and cached.prompt_tokens == 0
    assert parse_usage({"done": True}) is None


def test_it_parses_a_text_answer() -> None:
    raw = orjson.dumps(
        {
            "model": "llama3.1:8b",
            "message": {"role": "assistant", "content": "Hello"},
            "done": True,
            "done_reason": "length",
            "prompt_eval_count": 9,
            "eval_count": 2,
        }
    )
    completion = parse_chat_response(raw, model="llama", created=5, completion_id="chatcmpl-x")
    body = orjson.loads(completion.body)
    assert body["id"] == "chatcmpl-x" and body["object"] == "chat.completion" and body["model"] == "llama"
    assert body["choices"][0]["message"]["content"] == "Hello"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 2,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert completion.text == "Hello" and completion.finish_reason == "length"


def test_it_parses_tool_calls_with_generated_ids() -> None:
    raw = orjson.dumps(
        {
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "search", "arguments": {"q": "cats"}}}],
            },
            "done": True,
            "done_reason": "stop",
        }
    )
    completion = parse_chat_response(raw, model="llama", created=5, completion_id="chatcmpl-x")
    body = orjson.loads(completion.body)
    message = body["choices"][0]["message"]
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert CALL_ID.match(call["id"])
    assert call["type"] == "function" and call["function"] == {"name": "search", "arguments": '{"q":"cats"}'}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in body and completion.usage is None


def run_stream(lines: list[dict[str, Any]]) -> tuple[StreamTranslator, list[dict[str, Any]]]:
    translator = StreamTranslator(provider="local", model="llama", created=3, completion_id="chatcmpl-s")
    payloads = []
    for line in lines:
        for chunk in translator.feed(line):
            assert chunk.data is not None
            payloads.append(orjson.loads(chunk.data))
    return translator, payloads


def test_stream_lines_become_chunks_with_usage_at_the_end() -> None:
    translator, payloads = run_stream(
        [
            {"message": {"role": "assistant", "content": "Hel"}, "done": False},
            {"message": {"role": "assistant", "content": "lo"}, "done": False},
            {
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 4,
                "eval_count": 2,
            },
        ]
    )
    assert all(p["id"] == "chatcmpl-s" and p["object"] == "chat.completion.chunk" for p in payloads)
    assert [p["choices"][0]["delta"] for p in payloads] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert translator.finished
    usage = translator.usage_chunk()
    assert usage is not None and usage.usage_only and usage.data is not None
    assert orjson.loads(usage.data)["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_stream_tool_calls_are_indexed_across_lines() -> None:
    call = {"function": {"name": "search", "arguments": {"q": "x"}}}
    _, payloads = run_stream(
        [
            {"message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False},
            {"message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False},
            {"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"},
        ]
    )
    calls = [p["choices"][0]["delta"]["tool_calls"][0] for p in payloads if "tool_calls" in p["choices"][0]["delta"]]
    assert [c["index"] for c in calls] == [0, 1]
    assert all(CALL_ID.match(c["id"]) and c["function"]["arguments"] == '{"q":"x"}' for c in calls)
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_error_line_raises() -> None:
    with pytest.raises(GatewayError) as failed:
        run_stream([{"error": "model not found"}])
    assert failed.value.status == 502 and "model not found" in failed.value.message

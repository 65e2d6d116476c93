"""Unit tests of the Anthropic Messages inbound translation (pure, no servers)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway_platform.errors import GatewayError
from serving.anthropic.stream import AnthropicResponder, MessageUsage, StreamTranslator, translate_completion
from serving.anthropic.translate import error_body, error_event, parse_messages_request
from serving.exchange import Exchange

USER = {"role": "user", "content": "hi"}
TOOL = {
    "name": "search_files",
    "description": "Search the repository.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}


def parse(**body: Any):
    body.setdefault("model", "claude-sonnet")
    body.setdefault("max_tokens", 256)
    body.setdefault("messages", [USER])
    return parse_messages_request(orjson.dumps(body))


def rejected(**body: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        parse(**body)
    assert info.value.status == 400 and info.value.type == "invalid_request_error"
    return info.value


# --------------------------------------------------------------------------- request


def test_a_minimal_body_becomes_an_openai_chat_body():
    request = parse(model=" simple_ops ")
    assert request.model == "simple_ops"
    assert request.body == {"model": "simple_ops", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 256}
    assert not request.stream and not request.include_usage and request.max_tokens == 256


def test_the_system_prompt_becomes_a_system_message():
    assert parse(system="be brief").body["messages"][0] == {"role": "system", "content": "be brief"}
    blocks = [{"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "two"}]
    assert parse(system=blocks).body["messages"][0] == {"role": "system", "content": "one\n\ntwo"}
    assert parse(system="").body["messages"] == [{"role": "user", "content": "hi"}]


def test_text_and_image_blocks_become_content_parts():
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
    ]
    [message] = parse(messages=[{"role": "user", "content": content}]).body["messages"]
    assert message == {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "text", "text": "notes"},
            {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBER"}},
        ],
    }


def test_a_tool_loop_becomes_tool_calls_and_tool_messages_in_order():
    messages = [
        {"role": "user", "content": "find it"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "search_files", "input": {"query": "a"}},
                {"type": "tool_use", "id": "toolu_2", "name": "search_files", "input": {"query": "b"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "settings.py"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "no match"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                    ],
                },
                {"type": "text", "text": "and now?"},
            ],
        },
    ]
    out = parse(messages=messages).body["messages"]
    assert out[1] == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "search_files", "arguments": '{"query":"a"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "search_files", "arguments": '{"query":"b"}'}},
        ],
    }
    assert out[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "settings.py"}
    assert out[3] == {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no match"}
    assert out[4] == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            {"type": "text", "text": "and now?"},
        ],
    }
    assert len(out) == 5


def test_an_assistant_turn_with_only_tool_use_has_no_text():
    blocks = [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]
    message = parse(messages=[USER, {"role": "assistant", "content": blocks}]).body["messages"][1]
    assert message["content"] is None and message["tool_calls"][0]["function"]["arguments"] == "{}"


def test_tools_and_tool_choice_become_function_tools():
    body = parse(tools=[TOOL, {"type": "web_search_20250305", "name": "web_search"}]).body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "search_files",
                "parameters": TOOL["input_schema"],
                "description": TOOL["description"],
            },
        }
    ]
    assert "tool_choice" not in body
    assert parse(tools=[TOOL], tool_choice={"type": "auto"}).body["tool_choice"] == "auto"
    assert parse(tools=[TOOL], tool_choice={"type": "any"}).body["tool_choice"] == "required"
    assert parse(tools=[TOOL], tool_choice={"type": "none"}).body["tool_choice"] == "none"
    forced = parse(
        tools=[TOOL], tool_choice={"type": "tool", "name": "search_files", "disable_parallel_tool_use": True}
    )
    assert forced.body["tool_choice"] == {"type": "function", "function": {"name": "search_files"}}
    assert forced.body["parallel_tool_calls"] is False
    # OpenAI rejects tool_choice without tools: it is dropped.
    assert "tool_choice" not in parse(tool_choice={"type": "auto"}).body


def test_sampling_stop_and_metadata_are_translated_and_top_k_dropped():
    body = parse(
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
    ).body
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9 and body["stop"] == ["END"] and body["user"] == "u-1"
    assert "top_k" not in body and "thinking" not in body and "metadata" not in body


def test_a_stream_asks_for_usage_and_gateway_fields_are_kept_apart():
    request = parse(stream=True, skill="review", smart_routing=False, provider="local")
    assert request.stream and request.include_usage
    assert request.body["stream"] is True and request.body["stream_options"] == {"include_usage": True}
    assert (request.skill, request.smart_routing, request.provider) == ("review", False, "local")
    assert not {"skill", "smart_routing", "provider"} & set(request.body)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": None}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": ["text"]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
            "messages[0].content[0].source",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "messages[0].content[0].tool_use_id"),
        (
            {
                "messages": [
                    USER,
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": 1}]},
                ]
            },
            "messages[1].content[0].input",
        ),
        ({"system": [{"type": "image"}]}, "system[0]"),
        ({"system": 5}, "system"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 1.5}, "top_k"),
        ({"stream": "yes"}, "stream"),
        ({"metadata": "m"}, "metadata"),
    ],
)
def test_invalid_bodies_are_400s_naming_the_field(body, param):
    err = rejected(**body)
    assert err.param == param
    assert param.split("[")[0].split(".")[0] in err.message


def test_a_body_that_is_not_a_json_object_is_a_400():
    for raw in (b"", b"[1]", b"{nope"):
        with pytest.raises(GatewayError) as info:
            parse_messages_request(raw)
        assert info.value.status == 400


# --------------------------------------------------------------------------- whole answers


def completion(message: dict[str, Any], finish: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def test_a_text_completion_becomes_a_message():
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "total_tokens": 107,
        "prompt_tokens_details": {"cached_tokens": 60},
        "cache_creation_input_tokens": 30,
    }
    message = translate_completion(
        completion({"role": "assistant", "content": "Hello"}, "stop", usage), message_id="msg_1", model="simple_ops"
    )
    assert message == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "simple_ops",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 7,
            "cache_read_input_tokens": 60,
            "cache_creation_input_tokens": 30,
        },
    }


def test_tool_calls_become_tool_use_blocks_with_parsed_input():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"query": "x"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "search", "arguments": "not json"}},
    ]
    message = translate_completion(
        completion({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"), message_id="m", model="x"
    )
    assert message["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "search", "input": {"query": "x"}},
        {"type": "tool_use", "id": "call_2", "name": "search", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == MessageUsage().to_json()


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish, expected):
    message = translate_completion(completion({"content": "x"}, finish), message_id="m", model="x")
    assert message["stop_reason"] == expected


def test_openai_usage_maps_to_anthropic_usage():
    assert MessageUsage.from_openai({"prompt_tokens": 5, "completion_tokens": 2}) == MessageUsage(5, 2)
    assert MessageUsage.from_openai(None) is None
    assert MessageUsage.from_openai({"prompt_tokens": "5", "completion_tokens": 2}) is None


# --------------------------------------------------------------------------- streams


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    payload: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", **extra}
    payload.setdefault("choices", [{"index": 0, "delta": delta or {}, "finish_reason": finish}])
    return b"data: " + orjson.dumps(payload) + b"\n\n"


USAGE_CHUNK = chunk(choices=[], usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
TAIL = b": x-gateway-cost-usd=0.00001200\n\ndata: [DONE]\n\n"


def events(raw: bytes) -> list[tuple[str, Any]]:
    """Anthropic SSE bytes → [(event name, data)]; comments as ("comment", text)."""
    result: list[tuple[str, Any]] = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            result.append(("comment", block))
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = orjson.loads(lines["data"])
        assert data["type"] == lines["event"]
        result.append((lines["event"], data))
    return result


def translate(*pieces: bytes) -> list[tuple[str, Any]]:
    translator = StreamTranslator(message_id="msg_1", model="simple_ops")
    return events(b"".join(translator.feed(piece) for piece in pieces) + translator.close())


def test_a_text_stream_becomes_the_anthropic_event_sequence():
    out = translate(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}) + chunk({"content": " world"}),
        chunk({}, "stop"),
        USAGE_CHUNK,
        TAIL,
    )
    names = [name for name, _ in out]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "comment",
        "message_delta",
        "message_stop",
    ]
    start = out[0][1]["message"]
    assert start["id"] == "msg_1" and start["model"] == "simple_ops" and start["content"] == []
    assert start["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert out[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [d["delta"]["text"] for n, d in out if n == "content_block_delta"] == ["Hello", " world"]
    assert out[5][1] == ": x-gateway-cost-usd=0.00001200"
    delta = out[6][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 3 and delta["usage"]["input_tokens"] == 12


def test_tool_call_argument_deltas_split_across_pieces_become_input_json_deltas():
    header = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "search_files", "arguments": ""}}
    arguments = chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"query": "gr'}}]})
    more = chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ep"}'}}]})
    pieces = [
        chunk({"role": "assistant", "content": "Searching."}),
        chunk({"tool_calls": [header]}),
        arguments[:17],  # a piece may end mid-event
        arguments[17:] + more,
        chunk({}, "tool_calls"),
        USAGE_CHUNK,
        TAIL,
    ]
    out = translate(*pieces)
    starts = [d for n, d in out if n == "content_block_start"]
    assert starts[0]["content_block"]["type"] == "text" and starts[0]["index"] == 0
    assert starts[1] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "call_1", "name": "search_files", "input": {}},
    }
    json_parts = [d["delta"]["partial_json"] for n, d in out if n == "content_block_delta" and d["index"] == 1]
    assert orjson.loads("".join(json_parts)) == {"query": "grep"}
    assert [d["index"] for n, d in out if n == "content_block_stop"] == [0, 1]
    assert next(d for n, d in out if n == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_parallel_tool_calls_in_one_chunk_get_one_block_each():
    calls = [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": '{"x":1}'}},
    ]
    out = translate(chunk({"tool_calls": calls}), chunk({}, "tool_calls"), b"data: [DONE]\n\n")
    blocks = [d["content_block"] for n, d in out if n == "content_block_start"]
    assert [(b["id"], b["name"]) for b in blocks] == [("call_a", "f"), ("call_b", "g")]
    assert [d["index"] for n, d in out if n == "content_block_stop"] == [0, 1]


def test_keep_alives_become_pings_after_message_start():
    out = translate(b": keep-alive\n\n", b": keep-alive\n\n", chunk({"content": "x"}), chunk({}, "stop"), TAIL)
    assert [n for n, _ in out][:3] == ["message_start", "ping", "ping"]
    assert [n for n, _ in out][-2:] == ["message_delta", "message_stop"]


def test_a_stream_without_usage_or_done_still_ends_properly():
    out = translate(chunk({"content": "x"}), chunk({}, "length"))
    assert [n for n, _ in out][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    delta = out[-2][1]
    assert delta["delta"]["stop_reason"] == "max_tokens" and delta["usage"]["output_tokens"] == 0


def test_an_error_piece_becomes_an_error_event_and_ends_the_stream():
    error = b'data: {"error": {"message": "upstream died", "type": "api_error", "code": "upstream_dropped"}}\n\n'
    out = translate(chunk({"content": "partial"}), error)
    assert out[-1] == ("error", {"type": "error", "error": {"type": "api_error", "message": "upstream died"}})
    assert "message_stop" not in [n for n, _ in out]


# --------------------------------------------------------------------------- responder and errors


class Recorder:
    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.bodies: list[tuple[bytes, bool]] = []

    async def send_headers(self, *, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status, self.headers = status, list(headers or [])

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        self.bodies.append((body, more_body))


def responder() -> tuple[AnthropicResponder, Recorder]:
    exchange = Exchange(request_id="abc123", endpoint="messages", request_headers={})
    exchange.requested_model = "simple_ops"
    target = Recorder()
    return AnthropicResponder(target, exchange), target


async def test_the_responder_translates_a_whole_answer_and_keeps_gateway_headers():
    wrapper, target = responder()
    await wrapper.send_headers(headers=[(b"Content-Type", b"application/json"), (b"X-Request-Id", b"abc123")])
    await wrapper.send_body(orjson.dumps(completion({"content": "hi"}, "stop")))
    assert dict(target.headers) == {b"Content-Type": b"application/json", b"X-Request-Id": b"abc123"}
    [(body, more)] = target.bodies
    message = orjson.loads(body)
    assert not more and message["id"] == "msg_abc123" and message["model"] == "simple_ops"
    assert message["content"] == [{"type": "text", "text": "hi"}]


async def test_the_responder_translates_a_stream_piece_by_piece():
    wrapper, target = responder()
    sse_headers = [(b"Content-Type", b"text/event-stream; charset=utf-8"), (b"X-Gateway-Cost-USD", b"pending")]
    await wrapper.send_headers(headers=sse_headers)
    await wrapper.send_body(chunk({"content": "hi"}), more_body=True)
    await wrapper.send_body(chunk({}, "stop") + USAGE_CHUNK, more_body=True)
    await wrapper.send_body(TAIL)
    assert (b"X-Gateway-Cost-USD", b"pending") in target.headers
    assert target.bodies[-1][1] is False and all(more for _, more in target.bodies[:-1])
    out = events(b"".join(body for body, _ in target.bodies))
    assert [n for n, _ in out][-2:] == ["message_delta", "message_stop"]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_errors_render_in_anthropic_shape(status, kind):
    err = GatewayError("nope", status=status)
    assert orjson.loads(error_body(err)) == {"type": "error", "error": {"type": kind, "message": "nope"}}
    assert error_event(err) == b"event: error\ndata: " + error_body(err) + b"\n\n"

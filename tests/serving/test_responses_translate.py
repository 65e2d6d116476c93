"""Pure translation between the Responses API and chat requests/answers (no servers)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from gateway_platform.errors import GatewayError
from serving.responses.answer import ResponsesStream, response_from_completion
from serving.responses.request import ResponsesContext, build_chat_request, parse_responses_body

FIXTURES = Path(__file__).resolve().parent.parent / "agents" / "fixtures"


def translate(body: dict[str, object], history: list[dict[str, object]] | None = None) -> tuple[dict, ResponsesContext]:
    request, context = build_chat_request(parse_responses_body(orjson.dumps(body)), history or [])
    return request.body, context


def events(raw: bytes) -> list[dict[str, object]]:
    out = []
    for block in raw.split(b"\n\n"):
        for line in block.splitlines():
            if line.startswith(b"data: "):
                out.append(orjson.loads(line[6:]))
    return out


def test_it_translates_what_codex_sends() -> None:
    body = json.loads((FIXTURES / "codex-0.171.0-responses.json").read_text())["body"]
    chat, context = translate(body)
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "system", "user", "user"]  # developer → system
    assert chat["messages"][-1]["content"] == "Create hello.txt containing hi"
    names = [t["function"]["name"] for t in chat["tools"]]
    assert "exec_command" in names and "apply_patch" in names
    assert "web_search" not in names and "tool_search" not in names  # hosted: dropped
    assert "apply_patch" in context.tools.custom
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert chat["reasoning_effort"] == "medium"
    for dropped in ("store", "include", "prompt_cache_key", "client_metadata", "input", "text"):
        assert dropped not in chat
    assert context.store is False


def test_it_turns_later_turn_items_into_chat_messages() -> None:
    chat, _ = translate(
        {
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
                {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
                {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "ok"}]},
            ],
        }
    )
    messages = chat["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1] == {"role": "user", "content": "list files"}
    calls = messages[2]["tool_calls"]
    assert [c["id"] for c in calls] == ["c1", "c2"]  # consecutive calls share one assistant message
    assert orjson.loads(calls[1]["function"]["arguments"]) == {"input": "*** Begin Patch"}
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
        {"role": "tool", "tool_call_id": "c2", "content": "ok"},
    ]


def test_it_flattens_namespaces_and_restores_them_in_answers() -> None:
    tool = {"type": "function", "name": "spawn", "parameters": {"type": "object", "properties": {}}}
    chat, context = translate(
        {"model": "m", "input": "hi", "tools": [{"type": "namespace", "name": "agents", "tools": [tool]}]}
    )
    assert chat["tools"][0]["function"]["name"] == "agents__spawn"
    completion = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c9", "type": "function", "function": {"name": "agents__spawn", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }
    response = response_from_completion(completion, context, response_id="resp_x", created_at=1)
    item = response["output"][0]
    assert (item["type"], item["name"], item["namespace"], item["call_id"]) == (
        "function_call",
        "spawn",
        "agents",
        "c9",
    )
    assert response["usage"]["total_tokens"] == 7 and response["status"] == "completed"


def test_it_maps_text_format_and_tool_choice() -> None:
    chat, _ = translate(
        {
            "model": "m",
            "input": "x",
            "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}, "strict": True}},
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"},
            "max_output_tokens": 50,
        }
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": True},
    }
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["max_tokens"] == 50


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": [{"type": "bogus"}]}, "input[0].type"),
        ({"model": "m", "input": [{"type": "message", "role": "tool", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        (
            {"model": "m", "input": [{"type": "message", "role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
        (
            {
                "model": "m",
                "input": "x",
                "tools": [{"type": "function", "name": "f", "parameters": {"type": "string"}}],
            },
            "tools[0].parameters",
        ),
        (
            {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f", "parameters": []}]},
            "tools[0].parameters",
        ),
        ({"model": "m", "input": "x", "tools": [{"type": "teleport"}]}, "tools[0].type"),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "input": "x", "background": True}, "background"),
        ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ],
)
def test_it_refuses_bad_input_with_a_400_naming_the_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        translate(body)
    assert caught.value.status == 400
    assert caught.value.param == param


def chunk(delta: dict[str, object], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    payload: dict[str, object] = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        payload = {"choices": [], "usage": usage}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def test_it_streams_the_full_event_sequence_for_text_and_tool_calls() -> None:
    _, context = translate({"model": "m", "input": "x", "tools": [{"type": "function", "name": "ls"}]})
    stream = ResponsesStream(context, response_id="resp_1", created_at=1)
    call = {"index": 0, "id": "call_1", "function": {"name": "ls", "arguments": '{"a":'}}
    raw = b"".join(
        [
            stream.feed(chunk({"reasoning_content": "thinking"})),
            stream.feed(chunk({"content": "Hel"}) + chunk({"content": "lo"})[:10]),
            stream.feed(chunk({"content": "lo"})[10:] + b": keep-alive\n\n"),
            stream.feed(chunk({"tool_calls": [call]})),
            stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "tool_calls")),
            stream.feed(chunk({}, usage={"prompt_tokens": 3, "completion_tokens": 4})),
            stream.feed(b"data: [DONE]\n\n"),
            stream.close(),
        ]
    )
    assert b": keep-alive\n\n" in raw
    seen = events(raw)
    types = [e["type"] for e in seen]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in seen] == list(range(len(seen)))
    final = seen[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert final["output"][2]["arguments"] == '{"a":1}'
    assert final["usage"]["output_tokens"] == 4
    assert "_flat" not in orjson.dumps(final).decode()


def test_it_ends_a_failed_stream_with_response_failed() -> None:
    _, context = translate({"model": "m", "input": "x"})
    stream = ResponsesStream(context, response_id="resp_2", created_at=1)
    raw = stream.feed(chunk({"content": "a"})) + stream.feed(
        b'data: {"error": {"message": "boom", "code": "upstream_error"}}\n\n'
    )
    seen = events(raw)
    assert seen[-1]["type"] == "response.failed"
    assert seen[-1]["response"]["error"] == {"code": "upstream_error", "message": "boom"}
    assert stream.close() == b""


def test_it_marks_a_capped_answer_incomplete() -> None:
    _, context = translate({"model": "m", "input": "x"})
    completion = {"choices": [{"message": {"content": "abc"}, "finish_reason": "length"}]}
    response = response_from_completion(completion, context, response_id="resp_3", created_at=1)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_it_reads_the_tools_codex_sends_as_additional_tools_items() -> None:
    body = json.loads((FIXTURES / "codex-0.171.0-responses-default-model.json").read_text())["body"]
    assert body["model"] == "gpt-6.2-sol" and not body.get("tools")
    chat, context = translate(body)
    names = [t["function"]["name"] for t in chat["tools"]]
    assert "functions__exec" in names and "collaboration__spawn_agent" in names
    assert all(m["role"] in ("system", "user") for m in chat["messages"])  # the item itself is not a message
    completion = {
        "choices": [
            {
                "message": {
                    "tool_calls": [
                        {"id": "c1", "function": {"name": "functions__exec", "arguments": '{"input": "await 1"}'}}
                    ]
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    [item] = response_from_completion(completion, context, response_id="resp_y", created_at=1)["output"]
    assert item == {
        "type": "custom_tool_call",
        "id": "fc_y_0",
        "call_id": "c1",
        "name": "exec",
        "input": "await 1",
        "status": "completed",
        "namespace": "functions",
    }


def test_tools_declared_again_in_a_stored_conversation_are_sent_once() -> None:
    declared = {"type": "additional_tools", "tools": [{"type": "function", "name": "ls"}]}
    chat, _ = translate({"model": "m", "input": [declared, {"role": "user", "content": "x"}]}, history=[declared])
    assert [t["function"]["name"] for t in chat["tools"]] == ["ls"]

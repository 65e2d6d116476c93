"""Pure parts of the serving side of pass-through and of ``input_items`` paging."""

from __future__ import annotations

import orjson
import pytest

from gateway_platform.errors import GatewayError
from serving.anthropic.stream import PassthroughEvents
from serving.responses.items import ItemsQuery, input_items, page, parse_query


def test_anthropic_events_pass_and_the_chat_translation_is_dropped() -> None:
    events = PassthroughEvents(model="code_gen")
    start = {"type": "message_start", "message": {"id": "m", "model": "claude-x", "content": []}}
    piece = (
        b'data: {"object":"chat.completion.chunk"}\n\n'
        b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n"
        b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"signature":"s=="}}\n\n'
        b": keep-alive\n\n: x-gateway-cost-usd=0.1\n\ndata: [DONE]\n\n"
    )
    out = events.feed(piece) + events.close()
    assert b"chat.completion.chunk" not in out and b"[DONE]" not in out
    assert b'"model":"code_gen"' in out and b"claude-x" not in out
    assert b'{"type":"content_block_delta","delta":{"signature":"s=="}}' in out  # byte for byte
    assert b"event: ping" in out and b": x-gateway-cost-usd=0.1" in out


def items() -> list[dict[str, object]]:
    conversation = [
        {"role": "user", "content": "a"},
        {"type": "function_call_output", "call_id": "c", "output": "x", "id": "fco_given"},
        {"type": "message", "role": "assistant", "content": "answer"},  # the response's own output
    ]
    return input_items("resp_abc", conversation, output_items=1)


def test_input_items_leave_out_the_output_and_get_stable_ids() -> None:
    listed = items()
    assert [i["id"] for i in listed] == ["msg_abc_0", "fco_given"]
    assert listed[0]["content"] == [{"type": "input_text", "text": "a"}] and listed[0]["status"] == "completed"


def test_pages_and_cursors() -> None:
    assert page(items(), ItemsQuery())["data"][0]["id"] == "fco_given"  # newest first by default
    first = page(items(), ItemsQuery(limit=1, order="asc"))
    assert first["has_more"] and first["first_id"] == first["last_id"] == "msg_abc_0"
    rest = page(items(), ItemsQuery(limit=1, order="asc", after="msg_abc_0"))
    assert [i["id"] for i in rest["data"]] == ["fco_given"] and not rest["has_more"]
    with pytest.raises(GatewayError):
        page(items(), ItemsQuery(after="nope"))


@pytest.mark.parametrize("query", [b"limit=0", b"limit=101", b"limit=-1", b"order=up"])
def test_bad_queries(query: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_query(query)
    assert caught.value.status == 400


def test_a_good_query() -> None:
    assert parse_query(b"limit=5&order=asc&after=msg_1&include[]=x") == ItemsQuery(5, "asc", "msg_1")

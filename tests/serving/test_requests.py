"""Unit tests of request validation (pure)."""

from __future__ import annotations

import orjson
import pytest

from gateway_platform.errors import GatewayError
from serving.requests import parse_chat_request


def parse(**body: object):
    return parse_chat_request(orjson.dumps(body))


def test_it_strips_the_gateway_fields_before_forwarding():
    request = parse(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        skill="code-review",
        smart_routing=False,
        provider="local",
        temperature=0.2,
    )
    assert request.skill == "code-review" and request.smart_routing is False and request.provider == "local"
    assert set(request.body) == {"model", "messages", "temperature"}


def test_it_reads_stream_options_and_the_output_cap():
    request = parse(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        max_completion_tokens=50,
        max_tokens=10,
    )
    assert request.stream and request.include_usage
    assert request.max_tokens == 50  # the newer field wins


def test_stream_options_without_stream_is_an_error():
    with pytest.raises(GatewayError) as excinfo:
        parse(model="m", messages=[{"role": "user", "content": "hi"}], stream_options={"include_usage": True})
    assert excinfo.value.param == "stream_options"


def test_content_parts_and_null_content_are_accepted():
    request = parse(
        model="m",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": None, "tool_calls": []},
        ],
    )
    assert len(request.body["messages"]) == 2


@pytest.mark.parametrize("value", [True, "1", 1.5])
def test_integers_must_be_integers(value):
    with pytest.raises(GatewayError) as excinfo:
        parse(model="m", messages=[{"role": "user", "content": "hi"}], n=value)
    assert excinfo.value.status == 400 and excinfo.value.param == "n"

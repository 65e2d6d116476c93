"""Streaming is pass-through: chunks arrive as generated, disconnects cancel upstream."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

import httpx2
import pytest

from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    return make_key()[1]


def stream(gateway_url: str, secret: str, text: str, request_id: str | None = None):
    headers = {"Authorization": f"Bearer {secret}"}
    if request_id:
        headers["X-Request-Id"] = request_id
    body = {"model": "mock-small", "stream": True, "messages": [{"role": "user", "content": text}]}
    return httpx2.stream("POST", f"{gateway_url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def test_chunks_arrive_incrementally(gateway_url, secret, drained_events):
    # The mock paces 10 tokens per second: unbuffered chunks arrive ~0.1 s apart.
    arrivals: list[float] = []
    with stream(gateway_url, secret, "pace me [[mock: words=8 tps=10]]") as response:
        started = time.monotonic()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 12
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # If the gateway buffered, everything would land at once at the end.
    assert arrivals[-1] - arrivals[0] > 0.8
    assert sum(1 for gap in gaps if gap > 0.05) >= len(gaps) // 2
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.stream and event.completion_tokens == len(arrivals) - 1  # the finish chunk carries no token


def test_a_silent_upstream_gets_keep_alive_comments(gateway_url, secret):
    # The test server sends a keep-alive every 0.5 s; the mock waits 1.3 s before its first token.
    with stream(gateway_url, secret, "slow start [[mock: ttft=1.3]]") as response:
        lines = [line for line in response.iter_lines() if line]
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert lines[:first_data].count(": keep-alive") >= 2
    assert lines[-1] == "data: [DONE]"


def test_a_client_disconnect_cancels_the_upstream_and_is_billed(gateway_url, mock_upstream_url, secret, drained_events):
    with stream(gateway_url, secret, "long answer [[mock: words=200 tps=20]]") as response:
        request_id = response.headers["x-request-id"]  # the gateway's id, which it also sends upstream
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
                if received == 3:
                    break
    # Leaving the block closed the connection mid-stream.
    deadline = time.monotonic() + 10
    record = None
    while time.monotonic() < deadline:
        records = [r for r in httpx2.get(f"{mock_upstream_url}/_mock/events").json() if r["id"] == request_id]
        if records and records[0]["cancelled"]:
            record = records[0]
            break
        time.sleep(0.1)
    assert record is not None, "the mock never saw the upstream request cancelled"
    assert not record["completed"]

    [event] = drained_events(1, request_id=request_id)
    assert event.client_disconnected
    assert event.status_code == 200  # the answer had started
    assert 3 <= event.completion_tokens < 200  # billed for what was generated, not the whole answer
    assert event.tokens_estimated  # the upstream never got to send its usage


def test_a_stream_ends_with_its_cost_just_before_done(gateway_url, secret, drained_events):
    """The README's streamed cost: `X-Gateway-Cost-USD: pending`, then `: x-gateway-cost-usd=<usd>`."""
    with stream(gateway_url, secret, "what does this cost [[mock: words=6]]") as response:
        assert response.headers["x-gateway-cost-usd"] == "pending"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert lines[-2].startswith(": x-gateway-cost-usd=")
    cost = Decimal(lines[-2].split("=", 1)[1])
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert cost > 0 and cost == event.cost_usd

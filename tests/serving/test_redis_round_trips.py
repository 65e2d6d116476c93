"""The Redis work of one request: admission and the breaker read together, settlement with the usage record."""

from __future__ import annotations

import openai
import pytest

from billing.enforcement import _ADMIT, _SETTLE
from providers.circuit import _ACQUIRE
from tests.factories import make_budget, make_key, make_model, make_provider, make_tier
from tests.serving.redis_monitor import RedisMonitor

pytestmark = pytest.mark.django_db(transaction=True)


def sha(source: str) -> str:
    import hashlib

    return hashlib.sha1(source.encode()).hexdigest()


def test_a_request_to_a_closed_breaker_makes_no_circuit_call_and_settles_with_its_record(
    gateway_url, mock_upstream_url, drained_events
):
    provider = make_provider(f"{mock_upstream_url}/v1", name="rtai")
    make_tier("rt_tier", [make_model(provider, name="rt-model", upstream_model="rt-1", input_cost="1")])
    key, secret = make_key(rpm_limit=1000)
    make_budget("5", api_key=key)
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)
    client.chat.completions.create(model="rt_tier", messages=[{"role": "user", "content": "warm up"}])

    with RedisMonitor() as monitor:
        ids = [
            client.chat.completions.with_raw_response.create(
                model="rt_tier", messages=[{"role": "user", "content": f"question {n}"}]
            ).headers["x-request-id"]
            for n in range(4)
        ]

    assert monitor.count(sha(_ACQUIRE)) == 0  # the closed breaker was read with admission
    assert monitor.count('"HMGET" "cb:rt-model"') == 4
    assert monitor.count(sha(_ADMIT)) == 4
    assert monitor.count(sha(_SETTLE)) == 4
    assert monitor.count('"XADD"') == 4
    events = [drained_events(1, request_id=rid)[0] for rid in ids]
    assert all(event.cost_usd > 0 for event in events)

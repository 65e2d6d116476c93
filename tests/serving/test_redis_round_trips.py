"""The Redis work of one request: admission, breaker and exact cache read together; settlement with the record."""

from __future__ import annotations

import openai
import pytest
from django.conf import settings

from billing.enforcement import _ADMIT, _SETTLE
from caching.models import CachePolicy
from providers.circuit import _ACQUIRE
from tests.conftest import start_gateway, stop_process
from tests.factories import make_budget, make_key, make_model, make_provider, make_tier
from tests.serving.redis_monitor import RedisMonitor
from tests.serving.redis_proxy import RedisRoundTrips, RoundTrip

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


ADMIT, SETTLE = sha(_ADMIT), sha(_SETTLE)


def shape(trip: RoundTrip) -> list[str]:
    """A round trip's commands, scripts named by what they are, sorted (a pipeline's order is not the point)."""
    names = []
    for command in trip.commands:
        name = command[0].upper()
        if name == "EVALSHA":
            name = {ADMIT: "ADMIT", SETTLE: "SETTLE"}.get(command[1], f"EVALSHA {command[1][:8]}")
        elif name in ("GET", "EXISTS", "SET", "HMGET"):
            name = f"{name} {command[1].split(':')[0]}:{command[1].split(':')[1]}"
        names.append(name)
    return sorted(names)


BEFORE = ["ADMIT", "EXISTS gwcache:s", "GET gwcache:x", "HMGET cb:rt-cache-model"]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_with_the_cache_on_a_request_makes_one_round_trip_before_the_upstream_and_one_at_the_end(
    mock_upstream_url, stream
):
    """Miss and hit: admission, breaker, exact entry and scope marker in one trip; settlement and record in one."""
    provider = make_provider(f"{mock_upstream_url}/v1", name="rtcache")
    make_tier("rt_cache", [make_model(provider, name="rt-cache-model", upstream_model="rt-2", input_cost="1")])
    CachePolicy.objects.create(tenant=None)  # exact and semantic layers on
    key, secret = make_key(rpm_limit=1000)
    make_budget("5", api_key=key)  # a reservation to release on a hit, and max_tokens set by admission

    with RedisRoundTrips(settings.REDIS_URL) as proxy:
        # The config version is read once at start, not per request: only the request's own trips count.
        # Likewise the in-flight heartbeat (billing.inflight): one beat at the first request, none per request.
        proc, url = start_gateway(
            REDIS_URL=proxy.url, GATEWAY_CONFIG_POLL_SECONDS="3600", GATEWAY_INFLIGHT_HEARTBEAT_SECONDS="3600"
        )
        try:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)

            def ask(prompt: str) -> str:
                messages = [{"role": "user", "content": prompt}]
                if stream:
                    with client.chat.completions.with_streaming_response.create(
                        model="rt_cache", messages=messages, stream=True
                    ) as response:
                        response.read()
                        return response.headers["x-gateway-cache"]
                return client.chat.completions.with_raw_response.create(model="rt_cache", messages=messages).headers[
                    "x-gateway-cache"
                ]

            def stored(trips: list[RoundTrip]) -> bool:
                return any(c[0].upper() == "SET" and c[1].startswith("gwcache:x") for t in trips for c in t.commands)

            # Warm up: the first miss reserves the cache's entry ids, and stores its answer on its own.
            for prompt in ("warm up one", "warm up two"):
                assert ask(prompt) == "MISS"
                proxy.wait_for(stored)
                proxy.clear()

            assert ask("what is in the cache") == "MISS"
            trips = proxy.wait_for(lambda trips: any("XADD" in trip.names() for trip in trips))
            # The in-flight record is written by the admission script and removed (HDEL) with the record;
            # the answer is stored in the same trip: its exact entry, the scope marker and its queued row.
            end_of_miss = ["HDEL", "SET gwcache:s", "SET gwcache:x", "SETTLE", "XADD", "XADD"]
            assert [shape(trip) for trip in trips] == [BEFORE, end_of_miss]
            end = trips[1].names()
            assert end.index("HDEL") > max(i for i, name in enumerate(end) if name == "XADD")  # after both records
            proxy.clear()

            assert ask("what is in the cache") == "HIT"
            trips = proxy.wait_for(lambda trips: any("XADD" in trip.names() for trip in trips))
            # A hit reserves with admission and releases with its record: nothing in between.
            assert [shape(trip) for trip in trips] == [BEFORE, ["HDEL", "HINCRBY", "HSET", "SETTLE", "XADD"]]
        finally:
            stop_process(proc)

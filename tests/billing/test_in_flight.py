"""A gateway process SIGKILLed with requests in flight: each is still billed once, by estimate.

Admission writes an in-flight record (``billing.inflight``) in its own Redis
call; the request's last round trip removes it after queueing the usage record.
A real gateway process is killed while the mock upstream holds its requests; the
reaper then bills each by estimate (status 499, ``gateway_lost``) and settles its
budget reservation, exactly once, however many reapers run and whatever the
process's own record does later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx2
import orjson
import pytest
from django.db import connections

from billing import inflight
from billing.budgets import usd_to_nano
from billing.models import UsageEvent
from billing.usage import STREAM
from gateway_platform.redis_clients import sync_client
from tests.conftest import start_gateway, stop_process
from tests.factories import make_budget, make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT = "0.2"  # dead after 0.6 s without a beat


@pytest.fixture
def gateway() -> Iterator[tuple[object, str]]:
    proc, url = start_gateway(GATEWAY_INFLIGHT_HEARTBEAT_SECONDS=HEARTBEAT)
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            stop_process(proc)


@pytest.fixture
def world(mock_upstream_url: str, settings) -> tuple[str, object]:
    settings.GATEWAY = {**settings.GATEWAY, "INFLIGHT_HEARTBEAT_SECONDS": float(HEARTBEAT)}
    provider = make_provider(f"{mock_upstream_url}/v1", name="inflightai")
    make_model(provider, name="inflight-model", upstream_model="if-1", input_cost="3", output_cost="9")
    key, secret = make_key(rpm_limit=1000)
    budget = make_budget("5", api_key=key)
    return secret, budget


def ask_in_background(url: str, secret: str, prompt: str) -> threading.Thread:
    """A request the mock holds for a while (the client gives up when the gateway dies)."""

    def send() -> None:
        body = {"model": "inflight-model", "messages": [{"role": "user", "content": prompt}], "max_tokens": 50}
        headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}
        with contextlib.suppress(httpx2.HTTPError):  # the gateway was killed
            httpx2.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=30)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def wait_until(condition, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def records_of(prompt_marker: str) -> dict[str, dict[str, object]]:
    """In-flight records (by request id) of requests whose estimate we can recognise by their model."""
    client = sync_client()
    found = {}
    for owner in inflight.in_flight(client):
        for request_id, raw in client.hgetall(inflight.owner_key(owner)).items():
            data = orjson.loads(raw)
            if data.get("model") == prompt_marker:
                found[request_id.decode()] = data
    return found


def budget_hash(budget) -> dict[bytes, bytes]:  # type: ignore[no-untyped-def]
    client = sync_client()
    [key] = [k for k in client.keys(f"bud:{budget.id}:*") if not k.endswith(b":r")]
    return client.hgetall(key)


def test_it_bills_the_requests_of_a_killed_gateway_once_by_estimate(gateway, world, drained_events):
    proc, url = gateway
    secret, budget = world
    for n in range(2):
        ask_in_background(url, secret, f"held request {n} [[mock: delay=30]]")
    held = wait_until(lambda: (r := records_of("inflight-model")) and len(r) == 2 and r)
    assert int(budget_hash(budget)[b"r"]) > 0  # reserved while in flight

    assert inflight.reap().billed == []  # its process is alive: nothing to reap
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    # Two reapers at once (two beat workers): each request is billed by exactly one of them.
    time.sleep(3 * float(HEARTBEAT) + 0.2)
    results: list[inflight.Reaped] = []

    def reaper() -> None:
        try:
            results.append(inflight.reap())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reaper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    billed = sorted(rid for result in results for rid in result.billed)
    assert billed == sorted(held)
    assert inflight.reap().billed == []  # and never again
    assert records_of("inflight-model") == {}

    events = {e.request_id: e for rid in held for e in drained_events(1, request_id=rid)}
    assert sorted(events) == sorted(held)
    spent = Decimal(0)
    for request_id, event in events.items():
        record = held[request_id]
        assert (event.status_code, event.error_code, event.tokens_estimated) == (499, "gateway_lost", True)
        assert event.prompt_tokens == record["prompt_tokens"] > 0 and event.completion_tokens == 0
        assert event.cost_usd == Decimal(record["prompt_tokens"]) * 3 / 1_000_000  # input price, prompt estimate
        assert (event.model, event.api_key_id) == ("inflight-model", budget.api_key_id)
        spent += event.cost_usd
    settled = budget_hash(budget)
    assert int(settled[b"r"]) == 0  # both reservations released
    assert int(settled[b"s"]) == sum(usd_to_nano(e.cost_usd) for e in events.values())  # settled to the estimates
    assert UsageEvent.objects.filter(request_id__in=list(held)).count() == 2


def test_a_late_answer_after_the_reaper_leaves_one_event(gateway, world, drained_events, settings):
    """A record reaped while its process still lives (it outlived the bound): the late record is ignored."""
    _, url = gateway
    secret, _ = world
    thread = ask_in_background(url, secret, "slow but alive [[mock: delay=2]]")
    [(request_id, _)] = wait_until(lambda: records_of("inflight-model")).items()
    settings.GATEWAY = {**settings.GATEWAY, "INFLIGHT_MAX_SECONDS": 0.0}
    assert inflight.reap().billed == [request_id]
    thread.join(timeout=30)  # the process answers and queues its own record afterwards

    wait_until(lambda: _stream_entries(request_id) == 2)  # two records queued, one per writer
    time.sleep(0.5)
    events = drained_events(2, timeout=3, request_id=request_id)
    assert len(events) == 1 and events[0].error_code == "gateway_lost"  # the first queued is the one stored


def test_a_record_whose_request_is_billed_is_removed_without_a_second_bill(gateway, world, drained_events, settings):
    """The removal was lost (Redis down at the end: the record was spooled): the reaper only removes it."""
    _, url = gateway
    secret, _ = world
    thread = ask_in_background(url, secret, "answered normally [[mock: delay=1]]")
    [request_id] = wait_until(lambda: records_of("inflight-model"))
    owner = _owner_of(request_id)
    raw = sync_client().hget(owner, request_id)
    thread.join(timeout=30)
    [event] = drained_events(1, request_id=request_id)
    assert event.status_code == 200 and not event.tokens_estimated

    sync_client().hset(owner, request_id, raw)  # as if its removal had never arrived
    settings.GATEWAY = {**settings.GATEWAY, "INFLIGHT_MAX_SECONDS": 0.0}
    reaped = inflight.reap()
    assert (reaped.billed, reaped.already_billed) == ([], [request_id])
    assert records_of("inflight-model") == {} and _stream_entries(request_id) == 0
    assert UsageEvent.objects.filter(request_id=request_id).count() == 1


def _owner_of(request_id: str) -> str:
    client = sync_client()
    for owner in inflight.in_flight(client):
        if client.hexists(inflight.owner_key(owner), request_id):
            return inflight.owner_key(owner)
    raise AssertionError(f"no in-flight record for {request_id}")


def _stream_entries(request_id: str) -> int:
    entries = sync_client().xrange(STREAM)
    return sum(1 for _, fields in entries if orjson.loads(fields[b"e"]).get("request_id") == request_id)


def test_lost_record_is_an_estimate_with_status_499():
    started = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    data = {
        "request_id": "abc",
        "endpoint": "chat",
        "started_at": started.isoformat(),
        "tenant_id": 1,
        "model": "m",
        "provider": "p",
        "prompt_tokens": 12,
        "cost_usd": "0.000036",
        "reservation": "abc.1",
        "budgets": [["bud:1:x", ""], ["bud:2:x", "other"], ["bud:3:x", "m"]],
        "from_a_newer_version": True,
    }
    record = inflight.lost_record(data, now=started)
    assert (record.status_code, record.error_code, record.tokens_estimated) == (499, "gateway_lost", True)
    assert (record.prompt_tokens, record.completion_tokens, record.cost_usd) == (12, 0, Decimal("0.000036"))
    assert record.attempts == [{"provider": "p", "model": "m", "status": 499, "error": "gateway_lost"}]
    assert inflight.settled_nano(data, record.cost_usd) == [36_000, 0, 36_000]  # a per-model budget of another: 0

"""A request whose client leaves before the answer is still billed for what the provider charged.

Through the real gateway and the mock upstream: the client gives up while the
upstream is still working. A whole (non-streaming) answer and a held stream
(guardrail block mode) are paid for upstream whether anyone reads them or not,
so the gateway lets the call finish in the background and records exactly one
usage event with the provider's tokens and their cost (status 499). The mock's
own ledger (``usage`` on its request records) is what the provider charged.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx2
import pytest

from billing import usage
from billing.budgets import usd_to_nano
from billing.costs import cost_usd
from billing.models import UsageEvent
from gateway_platform.redis_clients import sync_client
from providers.adapters.base import Usage
from routing.catalog import load_catalog
from routing.models import GuardrailPolicy, RoutingPolicy
from tests.billing.conftest import auth
from tests.conftest import start_gateway, stop_process
from tests.factories import make_budget, make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model(mock_upstream_url: str):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    return make_model(provider, name="abandoned", input_cost="3", output_cost="15")


def leave_early(gateway_url: str, secret: str, body: dict[str, object], timeout: float = 0.5) -> None:
    """Send ``body`` and hang up after half a second, long before the mock answers (or lose the connection)."""
    with pytest.raises((httpx2.ReadTimeout, httpx2.RemoteProtocolError, httpx2.ReadError)):
        httpx2.post(f"{gateway_url}/v1/chat/completions", headers=auth(secret), json=body, timeout=timeout)


def mock_ledger_all(mock_upstream_url: str) -> list[dict[str, object]]:
    return httpx2.get(f"{mock_upstream_url}/_mock/events", timeout=5).json()


def mock_ledger(mock_upstream_url: str, request_id: str) -> list[dict[str, object]]:
    return [r for r in mock_ledger_all(mock_upstream_url) if r["id"] == request_id]


def assert_billed_like_the_provider(event: UsageEvent, mock_upstream_url: str) -> None:
    [served] = mock_ledger(mock_upstream_url, event.request_id)
    assert served["completed"] and not served["cancelled"]  # the upstream call was not cut short
    tokens = served["usage"]
    assert (event.prompt_tokens, event.completion_tokens) == (tokens["prompt_tokens"], tokens["completion_tokens"])
    assert not event.tokens_estimated and event.completion_tokens > 0
    deployment = load_catalog()[0]["abandoned"]
    assert event.cost_usd == cost_usd(deployment, Usage(tokens["prompt_tokens"], tokens["completion_tokens"])) > 0
    assert event.status_code == 499 and event.client_disconnected


def only_event(drained_events, key_id: int) -> UsageEvent:
    events = drained_events(1, timeout=20, api_key_id=key_id)
    usage.drain()  # anything queued twice would land now
    assert UsageEvent.objects.filter(api_key_id=key_id).count() == 1
    return events[0]


@pytest.fixture(params=["daphne", "uvicorn"])
def server_url(request, gateway_url: str):
    """The session's Daphne gateway, or a uvicorn one started for the test (both servers are supported)."""
    if request.param == "daphne":
        yield gateway_url
        return
    proc, url = start_gateway("uvicorn")
    try:
        yield url
    finally:
        stop_process(proc)


def test_a_whole_answer_whose_client_left_is_billed_at_the_providers_cost(
    model, server_url, mock_upstream_url, drained_events
):
    key, secret = make_key()
    words = "[[mock: delay=2 words=40]]"
    leave_early(server_url, secret, {"model": "abandoned", "messages": [{"role": "user", "content": words}]})

    event = only_event(drained_events, key.pk)
    assert_billed_like_the_provider(event, mock_upstream_url)


def test_a_held_stream_whose_client_left_is_billed_at_the_providers_cost(
    model, gateway_url, mock_upstream_url, drained_events
):
    team = make_team()
    GuardrailPolicy.objects.create(tenant=team.tenant, mode="block", commands=["rm"])
    key, secret = make_key(team)
    body = {
        "model": "abandoned",
        "stream": True,
        "messages": [{"role": "user", "content": "[[mock: ttft=2 words=40]]"}],
    }
    leave_early(gateway_url, secret, body)

    event = only_event(drained_events, key.pk)
    assert_billed_like_the_provider(event, mock_upstream_url)


def test_the_budget_is_charged_the_real_cost_of_an_abandoned_answer(model, gateway_url, drained_events):
    key, secret = make_key()
    budget = make_budget("100", api_key=key)
    body = {"model": "abandoned", "messages": [{"role": "user", "content": "[[mock: delay=2]]"}]}
    leave_early(gateway_url, secret, body)

    event = only_event(drained_events, key.pk)
    [counter] = sync_client().keys(f"bud:{budget.pk}:*")
    settled = sync_client().hgetall(counter)
    assert int(settled[b"s"]) == usd_to_nano(event.cost_usd) > 0  # settled at the real cost
    assert int(settled.get(b"r", 0)) == 0  # nothing left reserved


def test_a_cascade_whose_client_left_bills_the_held_cheap_answer_and_starts_no_escalation(
    mock_upstream_url, gateway_url, drained_events
):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    cheap = make_model(provider, name="cheap-m", upstream_model="cheap-1", input_cost="1", output_cost="2")
    strong = make_model(provider, name="strong-m", upstream_model="strong-1", input_cost="10", output_cost="30")
    make_tier("light", [cheap], complexity_max=0.35)
    make_tier("heavy", [strong], complexity_max=1.0)
    team = make_team()
    RoutingPolicy.objects.create(tenant=team.tenant, cascade_enabled=True, cascade_quality_threshold=0.6)
    key, secret = make_key(team)
    # The cheap answer is slow and refuses (it would escalate): the client leaves while it is held.
    held = "hello cascade [[mock: ttft=2 refuse=1 model=cheap-1]]"
    leave_early(
        gateway_url, secret, {"model": "heavy", "stream": True, "messages": [{"role": "user", "content": held}]}
    )

    event = only_event(drained_events, key.pk)
    [served] = mock_ledger(mock_upstream_url, event.request_id)  # no call to strong-1: nobody to stream it to
    assert served["model"] == "cheap-1" and served["completed"]
    tokens = served["usage"]
    deployment = load_catalog()[0]["cheap-m"]
    assert event.cost_usd == cost_usd(deployment, Usage(tokens["prompt_tokens"], tokens["completion_tokens"])) > 0
    assert event.status_code == 499 and event.client_disconnected and event.error_code == "client_disconnected"


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_a_stopping_server_first_finishes_and_bills_the_abandoned_answers(
    model, mock_upstream_url, drained_events, server
):
    """uvicorn through the ASGI lifespan, Daphne (which has none) through a Twisted shutdown trigger."""
    key, secret = make_key()
    proc, url = start_gateway(server)
    try:
        body = {"model": "abandoned", "messages": [{"role": "user", "content": "[[mock: delay=2 words=30]]"}]}
        leave_early(url, secret, body)
        proc.send_signal(signal.SIGTERM)  # no connection is open: without waiting, the answer would be lost
        proc.wait(timeout=30)
    finally:
        stop_process(proc)

    event = only_event(drained_events, key.pk)
    assert_billed_like_the_provider(event, mock_upstream_url)


def test_a_stopping_daphne_finishes_and_bills_a_whole_answer_in_progress(model, mock_upstream_url, drained_events):
    """Daphne cancels the application of every open connection when it stops: the answer goes on upstream."""
    key, secret = make_key()
    proc, url = start_gateway("daphne")
    body = {"model": "abandoned", "messages": [{"role": "user", "content": "[[mock: delay=2 words=31]]"}]}
    try:
        asking = threading.Thread(target=leave_early, args=(url, secret, body), kwargs={"timeout": 30}, daemon=True)
        asking.start()
        deadline = time.monotonic() + 20
        ledger = mock_ledger_all
        while not [r for r in ledger(mock_upstream_url) if r["directives"].get("words") == 31 and not r["status"]]:
            assert time.monotonic() < deadline, "the request never reached the mock"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # the client is still waiting for the answer
        proc.wait(timeout=30)
        asking.join(timeout=30)
    finally:
        stop_process(proc)

    event = only_event(drained_events, key.pk)
    assert_billed_like_the_provider(event, mock_upstream_url)

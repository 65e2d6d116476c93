"""Budgets through the real gateway: two Daphne processes, one Redis, the mock upstream."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx2
import pytest
from django.db.models import Sum

from billing.models import UsageEvent
from tests.billing.conftest import auth, burst
from tests.factories import make_budget, make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

# Input is free so a reservation (prompt bound + max_tokens) is close to the actual cost:
# 5 output tokens at 10,000 USD per million reserve 0.05 USD; "Mock reply to: go" costs 0.04.
PRICEY = {"input_cost": "0", "output_cost": "10000"}


@pytest.fixture
def provider(mock_upstream_url: str):
    return make_provider(f"{mock_upstream_url}/v1", name="mockai")


def chat(url: str, secret: str, **body: object) -> httpx2.Response:
    payload = {"model": "pricey", "messages": [{"role": "user", "content": "go"}], **body}
    return httpx2.post(f"{url}/v1/chat/completions", headers=auth(secret), json=payload)


def spent(key_id: int) -> Decimal:
    return UsageEvent.objects.filter(api_key_id=key_id).aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def test_64_concurrent_requests_over_two_processes_never_exceed_a_tiny_budget(
    provider, gateway_url, second_gateway_url, drained_events
):
    make_model(provider, name="pricey", **PRICEY)
    key, secret = make_key()
    make_budget("0.30", api_key=key)
    # Each admitted answer is held 5 s, far longer than deciding all 64 takes on a busy machine:
    # no reservation is settled (and partly refunded) before the last request is decided.
    body = {"model": "pricey", "messages": [{"role": "user", "content": "go [[mock: delay=5]]"}], "max_tokens": 5}

    answers = burst([gateway_url, second_gateway_url], secret, body)

    ok = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    assert len(ok) == 6  # 0.30 / 0.05 reserved each
    assert all(a.status == 429 for a in refused)
    assert all(a.body["error"]["type"] == "insufficient_quota" for a in refused)
    assert all(a.body["error"]["code"] == "budget_exceeded" for a in refused)
    drained_events(64, api_key_id=key.pk)
    assert spent(key.pk) <= Decimal("0.30")
    assert spent(key.pk) == sum(Decimal(a.headers["x-gateway-cost-usd"]) for a in ok)


def test_a_request_must_fit_the_team_and_tenant_budgets_too(provider, gateway_url):
    make_model(provider, name="pricey", **PRICEY)
    key, secret = make_key()
    make_budget("100", api_key=key)
    make_budget("0.01", team=key.team, period="daily")
    response = chat(gateway_url, secret, max_tokens=5)
    assert response.status_code == 429
    message = response.json()["error"]["message"]
    assert f"daily budget of team '{key.team.tenant.slug}/{key.team.slug}' (0.01 USD)" in message
    assert "resets at" in message and "0.010000 USD left" in message
    assert "max_tokens of at most 1 would fit" in message
    assert int(response.headers["retry-after"]) <= 86400
    assert response.headers["x-ratelimit-remaining-requests"]


def test_the_reservation_is_released_when_the_upstream_fails(provider, gateway_url, drained_events):
    make_model(provider, name="pricey", **PRICEY)
    key, secret = make_key()
    make_budget("0.06", api_key=key)  # room for one reservation of 0.05 at a time
    failed = chat(gateway_url, secret, max_tokens=5, messages=[{"role": "user", "content": "go [[mock: status=500]]"}])
    assert failed.status_code == 502
    answered = chat(gateway_url, secret, max_tokens=5)
    assert answered.status_code == 200
    again = chat(gateway_url, secret, max_tokens=5)
    assert again.status_code == 429  # 0.04 settled + 0.05 > 0.06
    drained_events(3, api_key_id=key.pk)
    assert spent(key.pk) == Decimal("0.04")


def test_the_reservation_is_released_when_an_abandoned_request_fails_upstream(mock_upstream_url, gateway_url):
    # The client leaves; the gateway still waits for the upstream (it would bill a real answer:
    # tests/billing/test_aborted_requests.py), which times out after 2 s: nothing to bill, all released.
    slow = make_provider(f"{mock_upstream_url}/v1", name="mockai-slow", total_timeout=2.0)
    make_model(slow, name="pricey", **PRICEY)
    key, secret = make_key()
    make_budget("0.06", api_key=key)
    hanging = {"role": "user", "content": "go [[mock: hang=1]]"}
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(
            f"{gateway_url}/v1/chat/completions",
            headers=auth(secret),
            json={"model": "pricey", "messages": [hanging], "max_tokens": 5},
            timeout=1.0,
        )
    # The release happens when the abandoned upstream call ends: wait for it with a deadline.
    deadline = time.monotonic() + 30
    while (answer := chat(gateway_url, secret, max_tokens=5)).status_code != 200:
        assert answer.status_code == 429 and answer.json()["error"]["code"] == "budget_exceeded", answer.text
        assert time.monotonic() < deadline, "the disconnected request's reservation was never released"
        time.sleep(0.2)


def test_the_output_cap_is_reserved_and_enforced_upstream(provider, gateway_url):
    model = make_model(provider, name="pricey", **PRICEY)
    make_tier("capped", [model], max_output_tokens=3)
    key, secret = make_key()
    make_budget("1", api_key=key)
    response = chat(
        gateway_url, secret, model="capped", messages=[{"role": "user", "content": "go [[mock: words=50]]"}]
    )
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] == 3
    assert response.json()["choices"][0]["finish_reason"] == "length"


def test_a_per_model_budget_limits_only_that_model(provider, gateway_url):
    make_model(provider, name="pricey", **PRICEY)
    make_model(provider, name="cheap", input_cost="0", output_cost="1")
    key, secret = make_key()
    make_budget("0.01", api_key=key, model="pricey")
    refused = chat(gateway_url, secret, max_tokens=5)
    assert refused.status_code == 429
    assert "API key" in refused.json()["error"]["message"] and "on model 'pricey'" in refused.json()["error"]["message"]
    assert chat(gateway_url, secret, model="cheap", max_tokens=5).status_code == 200


def test_the_downgrade_action_retries_on_the_downgrade_tier(provider, gateway_url, drained_events):
    make_tier("premium", [make_model(provider, name="pricey", **PRICEY)])
    make_tier("economy", [make_model(provider, name="cheap", input_cost="0", output_cost="1")])
    key, secret = make_key(allowed_models=["premium"])
    make_budget("0.02", api_key=key, action="downgrade", downgrade_tier="economy")

    response = chat(gateway_url, secret, model="premium", max_tokens=5)

    assert response.status_code == 200
    assert response.headers["x-gateway-budget"] == "downgraded"
    assert response.headers["x-gateway-tier"] == "economy"
    assert response.headers["x-gateway-model"] == "cheap"
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.budget_status == "downgraded" and event.tier == "economy"


def test_a_downgrade_that_does_not_fit_either_is_refused(provider, gateway_url):
    make_tier("premium", [make_model(provider, name="pricey", **PRICEY)])
    make_tier("economy", [make_model(provider, name="cheap", input_cost="0", output_cost="5000")])
    key, secret = make_key()
    make_budget("0.02", api_key=key, action="downgrade", downgrade_tier="economy")
    response = chat(gateway_url, secret, model="premium", max_tokens=5)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "budget_exceeded"
    assert "did not fit on tier 'premium' or on the downgrade tier" in response.json()["error"]["message"]

"""Summarisation through the gateway: made once by the cheapest tier, billed, reused on the next turn."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx2
import pytest

from routing.models import RoutingPolicy
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_long_conversation_is_summarised_once_and_the_summary_reused(mock_upstream_url, gateway_url, drained_events):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    cheap = make_model(provider, name="cheap-sum", upstream_model="mock-gpt-mini", input_cost="0.1", output_cost="0.2")
    strong = make_model(provider, name="strong-sum", upstream_model="mock-gpt", input_cost="3", output_cost="15")
    make_tier("light", [cheap], complexity_max=0.35)
    make_tier("heavy", [strong], complexity_max=1.0)
    team = make_team()
    RoutingPolicy.objects.create(tenant=team.tenant, summarize_context=True, summarize_threshold_tokens=2_000)
    secret = make_key(team)[1]
    history = [{"role": "user", "content": f"task {uuid.uuid4().hex}"}]
    for n in range(24):
        history += [{"role": "assistant", "content": f"step {n} " + "x" * 400}, {"role": "user", "content": f"go {n}"}]
    headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}

    def ask(messages):
        response = httpx2.post(
            f"{gateway_url}/v1/chat/completions", json={"model": "heavy", "messages": messages}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response

    first = ask(history)
    assert first.headers["x-gateway-summary"].endswith("new; by=cheap-sum")
    second = ask([*history, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "next"}])
    assert "reused" in second.headers["x-gateway-summary"]
    [one] = drained_events(1, request_id=first.headers["x-request-id"])
    [two] = drained_events(1, request_id=second.headers["x-request-id"])
    summary_call = [a for a in one.attempts if a.get("summary")]
    assert len(summary_call) == 1 and summary_call[0]["model"] == "cheap-sum"
    assert not any(a.get("summary") for a in two.attempts)
    assert one.tokens_saved["summarize"] > 1_000 and one.model == "strong-sum"
    # The summary call is billed in the first request's cost, on top of the answer's own.
    answer = (one.prompt_tokens * Decimal(3) + one.completion_tokens * Decimal(15)) / Decimal(1_000_000)
    assert Decimal(summary_call[0]["cost_usd"]) > 0
    assert one.cost_usd == answer + Decimal(summary_call[0]["cost_usd"])

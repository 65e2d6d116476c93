"""Session affinity through the gateway: a session stays on the deployment that served it while it is healthy."""

from __future__ import annotations

import uuid

import openai
import pytest

from billing.models import UsageEvent
from providers.models import Model
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_session_stays_on_its_fallback_deployment_and_is_recorded(mock_upstream_url, gateway_url, drained_events):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    primary = make_model(provider, name="primary", upstream_model="mock-gpt")
    fallback = make_model(provider, name="fallback", upstream_model="mock-gpt-mini")
    make_tier("code_gen", [primary, fallback])
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(make_team())[1], max_retries=0)
    session = uuid.uuid4().hex
    headers = {"X-Gateway-Cache": "no-store", "X-Gateway-Session": session}

    def ask(text: str, **extra: object):
        return client.chat.completions.with_raw_response.create(
            model="code_gen", messages=[{"role": "user", "content": text}], extra_headers=headers, **extra
        )

    # The primary fails once (injected fault): failover serves the turn from the fallback, which is pinned.
    first = ask("turn one [[mock: status=500 model=mock-gpt]]")
    assert first.headers["x-gateway-model"] == "fallback"
    # The primary is healthy again, but the session stays where its prompt cache is.
    second = ask("turn two")
    assert second.headers["x-gateway-model"] == "fallback"
    assert "affinity=fallback" in second.headers["x-gateway-route-reason"]
    # Another session starts on the primary.
    other = client.chat.completions.with_raw_response.create(
        model="code_gen",
        messages=[{"role": "user", "content": "turn two"}],
        extra_headers={"X-Gateway-Cache": "no-store", "X-Gateway-Session": session + "-other"},
    )
    assert other.headers["x-gateway-model"] == "primary"
    events = drained_events(3, request_id__in=[r.headers["x-request-id"] for r in (first, second, other)])
    assert {e.session for e in events} == {session, session + "-other"}
    assert UsageEvent.objects.get(request_id=second.headers["x-request-id"]).route_reason["affinity"] == "fallback"


def test_a_prompt_too_long_for_the_primary_goes_to_the_deployment_whose_window_fits(
    mock_upstream_url, gateway_url, drained_events
):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    small = make_model(provider, name="small-window", upstream_model="mock-gpt")
    large = make_model(provider, name="large-window", upstream_model="mock-gpt-mini")
    Model.objects.filter(pk=small.pk).update(context_window=4_000)
    Model.objects.filter(pk=large.pk).update(context_window=200_000)
    make_tier("long_tier", [small, large])
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(make_team())[1], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="long_tier",
        messages=[{"role": "user", "content": "summarise this log:\n" + "line of the log\n" * 2_000}],
        extra_headers={"X-Gateway-Cache": "no-store"},
    )
    assert raw.headers["x-gateway-model"] == "large-window"
    assert "long_context=large-window" in raw.headers["x-gateway-route-reason"]
    short = client.chat.completions.with_raw_response.create(
        model="long_tier", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Gateway-Cache": "no-store"}
    )
    assert short.headers["x-gateway-model"] == "small-window"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.route_reason["long_context"] == "large-window" and "trim_context" not in event.tokens_saved


def test_auto_keeps_a_sessions_tier_for_lighter_turns_and_escalates_for_harder_ones(mock_upstream_url, gateway_url):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    layout = (
        ("simple_ops", "cheap-a", 0.35, "file_ops"),
        ("code_gen", "mid-a", 0.65, "refactoring"),
        ("complex_reasoning", "top-a", 1.0, "architecture"),
    )
    for tier, model, band, capability in layout:
        deployment = make_model(provider, name=model, upstream_model=f"mock-{model}")
        make_tier(tier, [deployment], complexity_max=band, capabilities=[capability])
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(make_team())[1], max_retries=0)
    session = uuid.uuid4().hex

    def ask(text: str, session_id: str | None = session):
        headers = {"X-Gateway-Cache": "no-store", **({"X-Gateway-Session": session_id} if session_id else {})}
        return client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": text}], extra_headers=headers
        )

    light = "list the files in the migrations folder"
    assert ask(light).headers["x-gateway-tier"] == "simple_ops"
    code = ask("refactor the billing module into smaller functions")
    assert code.headers["x-gateway-tier"] == "code_gen"  # a harder turn escalates
    back = ask(light)
    assert back.headers["x-gateway-tier"] == "code_gen"  # a lighter one stays where the cache is
    assert "session_tier=code_gen" in back.headers["x-gateway-route-reason"]
    assert ask(light, None).headers["x-gateway-tier"] == "simple_ops"  # no session: scored as usual

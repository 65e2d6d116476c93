"""Cascade routing, token reduction and code mode through a real Daphne gateway, with the openai SDK."""

from __future__ import annotations

import uuid
from decimal import Decimal
from urllib.parse import quote

import openai
import pytest

from routing.models import RoutingOutcome, RoutingPolicy
from tests.conftest import MOCK_PROVIDER_KEY_ENV
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

NO_CACHE = {"X-Gateway-Cache": "no-store"}  # the response cache must not answer for the upstream here
REFUSE_CHEAP = "[[mock: refuse=1 model=cheap-1]]"
LONG_ENOUGH = "[[mock: words=20]]"  # past CASCADE_MIN_RESPONSE_LENGTH (100 characters by default)


def reply(text: str, model: str | None = None) -> str:
    """A mock directive making the upstream (or only ``model``) answer exactly ``text``."""
    only = f" model={model}" if model else ""
    return f"[[mock: reply={quote(text, safe='')}{only}]]"


def nonce() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def world(mock_upstream_url: str):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    cheap = make_model(provider, name="cheap-m", upstream_model="cheap-1", input_cost="1", output_cost="2")
    strong = make_model(provider, name="strong-m", upstream_model="strong-1", input_cost="10", output_cost="30")
    make_tier("light", [cheap], complexity_max=0.35)
    make_tier("heavy", [strong], complexity_max=1.0)
    team = make_team()
    policy = RoutingPolicy.objects.create(tenant=team.tenant, cascade_enabled=True, cascade_quality_threshold=0.6)
    return team, policy


@pytest.fixture
def client(gateway_url: str, world) -> openai.OpenAI:
    team, _ = world
    return openai.OpenAI(
        base_url=f"{gateway_url}/v1", api_key=make_key(team)[1], max_retries=0, default_headers=NO_CACHE
    )


def cost(event_tokens: tuple[int, int], prices: tuple[str, str]) -> Decimal:
    prompt, completion = event_tokens
    return (prompt * Decimal(prices[0]) + completion * Decimal(prices[1])) / Decimal(1_000_000)


def outcome_for(request_id: str) -> RoutingOutcome:
    return RoutingOutcome.objects.get(request_id=request_id)


# -- cascade --------------------------------------------------------------------------------------


def test_a_good_cheap_answer_is_served_without_escalation(client, drained_events):
    raw = client.chat.completions.with_raw_response.create(
        model="heavy", messages=[{"role": "user", "content": f"hello cascade {nonce()} {LONG_ENOUGH}"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Mock reply to: hello cascade")
    assert raw.headers["x-gateway-model"] == "cheap-m" and raw.headers["x-gateway-tier"] == "light"

    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.model == "cheap-m" and event.tier == "light"
    assert [a["model"] for a in event.attempts] == ["cheap-m"] and event.attempts[0]["cascade"] == "served"
    assert event.cost_usd == cost((event.prompt_tokens, event.completion_tokens), ("1", "2"))
    outcome = outcome_for(event.request_id)
    assert (outcome.initial_tier, outcome.final_tier, outcome.escalated) == ("light", "light", False)
    assert outcome.reason == "passed" and outcome.quality_score >= 0.6 and outcome.success
    assert outcome.tenant_id == event.tenant_id and len(outcome.query_hash) == 64


def test_a_cheap_answer_below_the_minimum_length_escalates(client, drained_events):
    raw = client.chat.completions.with_raw_response.create(
        model="heavy", messages=[{"role": "user", "content": f"is it done {nonce()} {reply('Yes.', 'cheap-1')}"}]
    )
    assert raw.parse().choices[0].message.content.startswith("Mock reply to: is it done")
    assert raw.headers["x-gateway-model"] == "strong-m"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert (event.attempts[0]["model"], event.attempts[0]["cascade"]) == ("cheap-m", "discarded")
    assert event.route_reason["cascade"]["quality_reasons"][-1] == "below_min_length"
    assert outcome_for(event.request_id).escalated


def test_a_refusing_cheap_model_escalates_and_both_attempts_are_paid(client, drained_events):
    raw = client.chat.completions.with_raw_response.create(
        model="heavy", messages=[{"role": "user", "content": f"explain the bug {nonce()} {REFUSE_CHEAP}"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Mock reply to: explain the bug")
    assert raw.headers["x-gateway-model"] == "strong-m" and raw.headers["x-gateway-tier"] == "heavy"
    assert "x-gateway-fallback" not in raw.headers  # escalation is not a failover hop

    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    cheap, strong = event.attempts
    assert (cheap["model"], cheap["cascade"], strong["model"]) == ("cheap-m", "discarded", "strong-m")
    served = cost((event.prompt_tokens, event.completion_tokens), ("10", "30"))
    assert event.cost_usd == served + Decimal(cheap["cost_usd"]) > served
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(float(event.cost_usd))
    assert event.route_reason["cascade"]["quality_reasons"][0] == "refusal"
    outcome = outcome_for(event.request_id)
    assert (outcome.initial_tier, outcome.final_tier, outcome.escalated) == ("light", "heavy", True)
    assert outcome.reason.startswith("low quality: refusal") and outcome.quality_score < 0.6


def test_a_failing_cheap_tier_escalates(client, drained_events):
    raw = client.chat.completions.with_raw_response.create(
        model="heavy", messages=[{"role": "user", "content": f"hi {nonce()} [[mock: status=400 model=cheap-1]]"}]
    )
    assert raw.headers["x-gateway-model"] == "strong-m"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert outcome_for(event.request_id).reason.startswith("cheap tier failed")


def test_no_cascade_when_the_policy_is_off_or_a_model_is_named(client, world, drained_events):
    _, policy = world
    named = client.chat.completions.with_raw_response.create(
        model="strong-m", messages=[{"role": "user", "content": f"hi {nonce()}"}]
    )
    assert named.headers["x-gateway-model"] == "strong-m"
    policy.cascade_enabled = False
    policy.save()
    off = client.chat.completions.with_raw_response.create(
        model="heavy", messages=[{"role": "user", "content": f"hi {nonce()}"}]
    )
    assert off.headers["x-gateway-model"] == "strong-m"
    drained_events(2, request_id__in=[named.headers["x-request-id"], off.headers["x-request-id"]])
    assert not RoutingOutcome.objects.exists()


def test_streaming_replays_a_good_cheap_answer(client, drained_events):
    with client.chat.completions.with_streaming_response.create(
        model="heavy",
        messages=[{"role": "user", "content": f"stream it {nonce()} {LONG_ENOUGH}"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-gateway-model"] == "cheap-m"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Mock reply to: stream it") and "lorem ipsum dolor sit amet consectetur" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(text.split())
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.stream and event.model == "cheap-m" and event.ttft_ms is not None
    assert not outcome_for(event.request_id).escalated


def test_streaming_escalates_to_a_live_stream(client, drained_events):
    with client.chat.completions.with_streaming_response.create(
        model="heavy",
        messages=[{"role": "user", "content": f"stream it {nonce()} {REFUSE_CHEAP}"}],
        stream=True,
    ) as response:
        assert response.headers["x-gateway-model"] == "strong-m"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text.startswith("Mock reply to: stream it") and "sorry" not in text
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.model == "strong-m"
    assert (event.attempts[0]["model"], event.attempts[0]["cascade"]) == ("cheap-m", "discarded")
    assert event.cost_usd > cost((event.prompt_tokens, event.completion_tokens), ("10", "30"))
    assert outcome_for(event.request_id).escalated


# -- token reduction and code mode ------------------------------------------------------------------

FILE = "def load(path):\n" + "".join(f"    key_{n} = read('KEY_{n}')\n" for n in range(15))
RULES = "<rules>\nAlways use type hints. Prefer small pure functions. Never commit secrets.\n</rules>"


def test_reductions_are_applied_and_recorded_on_the_usage_event(client, world, drained_events):
    _, policy = world
    RoutingPolicy.objects.filter(pk=policy.pk).update(
        cascade_enabled=False, dedupe_files=True, strip_ide_boilerplate=True
    )
    policy.refresh_from_db()
    policy.save()
    messages = [{"role": "system", "content": "You are an IDE assistant."}]
    for n in range(3):
        messages += [
            {"role": "user", "content": f"{RULES}\n```python app/load.py\n{FILE}```\nquestion {n} {nonce()}"},
            {"role": "assistant", "content": f"answer {n}"},
        ]
    messages.append({"role": "user", "content": "and now?"})
    raw = client.chat.completions.with_raw_response.create(model="light", messages=messages)
    completion = raw.parse()
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.tokens_saved["dedupe_files"] > 100 and event.tokens_saved["strip_ide_boilerplate"] > 10
    full = sum(len(m["content"]) for m in messages) / 4
    assert completion.usage.prompt_tokens < full - event.tokens_saved["dedupe_files"] / 2


def test_context_is_trimmed_to_the_models_window(gateway_url, mock_upstream_url, drained_events):
    provider = make_provider(f"{mock_upstream_url}/v1", name="tiny")
    make_model(provider, name="tiny-m", upstream_model="tiny-1", context_window=1000, max_output_tokens=100)
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key()[1], max_retries=0, default_headers=NO_CACHE)
    messages = [{"role": "system", "content": "sys"}]
    for n in range(20):
        messages += [{"role": "user", "content": f"q{n} " + "x" * 400}, {"role": "assistant", "content": "y" * 400}]
    messages.append({"role": "user", "content": f"last question {nonce()}"})
    completion = client.chat.completions.create(
        model="tiny-m", messages=messages, extra_headers={"X-Request-Id": (rid := uuid.uuid4().hex)}
    )
    assert completion.choices[0].message.content.startswith("Mock reply to: last question")
    assert completion.usage.prompt_tokens <= 1000 - 100
    [event] = drained_events(1, client_request_id=rid)
    assert event.tokens_saved["trim_context"] > 2000


def test_code_mode_normalises_whole_and_streamed_answers(client, world, drained_events):
    _, policy = world
    RoutingPolicy.objects.filter(pk=policy.pk).update(cascade_enabled=False, code_mode=True)
    policy.refresh_from_db()
    policy.save()
    answer = "Here you go:   \n```python\nx = 1   \nprint(x)"
    messages = [{"role": "user", "content": f"write it {nonce()} {reply(answer)}"}]
    raw = client.chat.completions.with_raw_response.create(model="light", messages=messages)
    assert raw.parse().choices[0].message.content == "Here you go:\n```python\nx = 1\nprint(x)\n```"
    streamed = client.chat.completions.create(model="light", messages=messages, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
        "Here you go:\n```python\nx = 1\nprint(x)\n```"
    )
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.tokens_saved["code_mode"] < 0  # the instruction costs prompt tokens


# -- Anthropic prompt caching ---------------------------------------------------------------------


def test_the_prompt_caching_flag_only_goes_to_anthropic_deployments():
    from providers.adapters.anthropic import PROMPT_CACHING_KEY
    from providers.adapters.base import Deployment, ProviderConfig
    from serving.chat_plan import ChatPlan
    from serving.exchange import Exchange

    def deployment(kind: str) -> Deployment:
        provider = ProviderConfig(1, kind, kind, "http://x", None, 1, 1, 1, 1)
        return Deployment(1, kind, kind, provider, Decimal(1), Decimal(1), 100_000, None)

    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    plan = ChatPlan(exchange=Exchange("r", "chat", {}), body=body, prompt_caching=True)
    assert plan.body_for(deployment("anthropic"))[PROMPT_CACHING_KEY] is True
    for kind in ("openai", "ollama"):
        assert PROMPT_CACHING_KEY not in plan.body_for(deployment(kind))
    plan.prompt_caching = False
    assert PROMPT_CACHING_KEY not in plan.body_for(deployment("anthropic"))
    assert PROMPT_CACHING_KEY not in body  # the client's body is never modified


def test_anthropic_prompt_caching_follows_the_tenant_switch(gateway_url, mock_upstream_url):
    provider = make_provider(mock_upstream_url, kind="anthropic", name="claude", api_key_env=MOCK_PROVIDER_KEY_ENV)
    make_model(provider, name="claude-m", upstream_model="claude-1")
    cached_team, plain_team = make_team(), make_team()
    RoutingPolicy.objects.create(tenant=plain_team.tenant, anthropic_prompt_caching=False)
    system = f"A long and stable system prompt {nonce()}. " * 40

    def cached_tokens(team) -> list[int]:
        client = openai.OpenAI(
            base_url=f"{gateway_url}/v1", api_key=make_key(team)[1], max_retries=0, default_headers=NO_CACHE
        )
        result = []
        for question in ("first", "second"):
            completion = client.chat.completions.create(
                model="claude-m",
                messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
            )
            details = completion.usage.prompt_tokens_details
            result.append(details.cached_tokens if details else 0)
        return result

    assert cached_tokens(plain_team) == [0, 0]
    assert cached_tokens(cached_team)[1] > 0  # the default policy caches the system prompt


# -- check modes (CASCADE_QUALITY_CHECK_MODE, CASCADE_LOG_OUTCOMES) ------------------------------------


@pytest.fixture(scope="module")
def judged_gateway(django_db_setup, django_db_blocker):
    """A gateway whose cascade asks the cheap model to judge its own answer, and logs no outcomes."""
    from tests.conftest import start_gateway, stop_process

    # The judge's own reply ("2") is also the cheap answer: no length floor, so the judge is asked.
    proc, url = start_gateway(
        CASCADE_QUALITY_CHECK_MODE="llm", CASCADE_LOG_OUTCOMES="0", CASCADE_MIN_RESPONSE_LENGTH="0"
    )
    yield url
    stop_process(proc)


def test_the_llm_check_is_a_billed_judge_call_and_outcomes_can_be_switched_off(judged_gateway, world, drained_events):
    team, _ = world
    client = openai.OpenAI(
        base_url=f"{judged_gateway}/v1", api_key=make_key(team)[1], max_retries=0, default_headers=NO_CACHE
    )
    # The judge (the cheap model) answers "2": the cheap answer is discarded and the request escalates.
    raw = client.chat.completions.with_raw_response.create(
        model="heavy", messages=[{"role": "user", "content": f"explain the cascade {nonce()} {reply('2', 'cheap-1')}"}]
    )
    assert raw.headers["x-gateway-model"] == "strong-m"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    judge = next(a for a in event.attempts if "judge" in a)
    assert judge["judge"] == "cheap-m" and judge["score"] == 0.2 and Decimal(judge["cost_usd"]) > 0
    assert event.route_reason["cascade"]["escalated"] is True
    assert not RoutingOutcome.objects.filter(request_id=event.request_id).exists()

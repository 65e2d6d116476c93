"""The response cache through a real Daphne gateway, with the openai SDK as client."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import httpx2
import numpy as np
import openai
import pytest
from django.utils import timezone

from caching.embedders.local import MiniLM
from caching.models import CacheEntry, CachePolicy
from gateway_platform.redis_clients import sync_client
from tenants.models import Team
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = {"role": "system", "content": "You are a careful coding agent."}


@pytest.fixture
def team(mock_upstream_url: str) -> Team:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    model = make_model(provider, name="mock-small", upstream_model="mock-small-1", input_cost="2", output_cost="4")
    make_tier("simple_ops", [model])
    CachePolicy.objects.create(tenant=None)  # without a global policy the cache is off
    return make_team()


def client_for(gateway_url: str, team: Team) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(team)[1], max_retries=0)


@pytest.fixture
def client(gateway_url: str, team: Team) -> openai.OpenAI:
    return client_for(gateway_url, team)


def ask(client: openai.OpenAI, prompt: str, *, system: dict[str, str] = SYSTEM, **extra: object) -> tuple[str, dict]:
    raw = client.chat.completions.with_raw_response.create(
        model="simple_ops", messages=[system, {"role": "user", "content": prompt}], **extra
    )
    return raw.parse().choices[0].message.content or "", raw.headers


def stored(wait_for_entries: Callable[..., list[CacheEntry]], team: Team, count: int) -> list[CacheEntry]:
    entries = wait_for_entries(count, tenant_id=team.tenant_id)
    assert len(entries) == count
    return entries


def test_it_answers_a_repeat_from_the_exact_layer(client, team, wait_for_entries, drained_events) -> None:
    first, miss = ask(client, "List the files in the repository root")
    assert miss["x-gateway-cache"] == "MISS"
    stored(wait_for_entries, team, 1)

    second, hit = ask(client, "List the files in the repository root")

    assert second == first
    assert hit["x-gateway-cache"] == "HIT" and "x-gateway-cache-similarity" not in hit
    assert float(hit["x-gateway-cost-usd"]) == 0
    assert hit["x-gateway-model"] == "mock-small" and hit["x-gateway-tier"] == "simple_ops"
    [original] = drained_events(1, request_id=miss["x-request-id"])
    [event] = drained_events(1, request_id=hit["x-request-id"])
    assert (event.cache_status, event.status_code, event.cost_usd) == ("HIT", 200, Decimal(0))
    assert event.cost_saved_usd == original.cost_usd > 0
    assert event.tokens_saved == {
        "cache_prompt": original.prompt_tokens,
        "cache_completion": original.completion_tokens,
    }


def test_it_answers_a_paraphrase_from_the_semantic_layer(client, team, wait_for_entries, minilm: MiniLM) -> None:
    cached, first = "List all Python files in the src directory", "Show me all the Python files in the src directory"
    answer, _ = ask(client, cached)
    stored(wait_for_entries, team, 1)

    second, headers = ask(client, first)

    assert second == answer == f"Mock reply to: {cached}"
    assert headers["x-gateway-cache"] == "SEMANTIC"
    similarity = float(headers["x-gateway-cache-similarity"])
    assert 0.85 <= similarity < 1
    assert similarity == pytest.approx(float(np.dot(*minilm.encode([cached, first]))), abs=1e-3)


def embeddings(gateway_url: str, phase: str) -> float:
    """``gateway_cache_embeddings_total{phase}`` as the gateway process reports it."""
    for line in httpx2.get(f"{gateway_url}/metrics").text.splitlines():
        if line.startswith(f'gateway_cache_embeddings_total{{phase="{phase}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_prompt_is_embedded_before_answering_only_when_its_scope_has_entries(
    gateway_url, client, team, wait_for_entries, minilm: MiniLM
) -> None:
    before = embeddings(gateway_url, "lookup"), embeddings(gateway_url, "store")
    _, first = ask(client, "Explain what a Python generator expression is")
    stored(wait_for_entries, team, 1)
    assert first["x-gateway-cache"] == "MISS"
    # The scope was empty: nothing embedded before the answer, once when storing it.
    assert (embeddings(gateway_url, "lookup"), embeddings(gateway_url, "store")) == (before[0], before[1] + 1)

    _, second = ask(client, "Explain what a generator expression in Python is")
    assert second["x-gateway-cache"] == "SEMANTIC"
    assert embeddings(gateway_url, "lookup") == before[0] + 1


@pytest.mark.parametrize(
    ("cached", "changed"),
    [
        ("Summarise the file report.csv", "Summarise the file sales.csv"),
        ("Show the last 50 lines of app.log", "Show the last 20 lines of app.log"),
        ("Generate 10 random passwords", "Generate 12 random passwords"),
        (
            'Translate the sentence "the cat sleeps on the mat" into French',
            'Translate the sentence "the dog sleeps on the mat" into French',
        ),
        # One plain word that is a parameter (caching.wording): the literal checks alone served these.
        ("Push my commits to the trunk branch on upstream", "Push my commits to the main branch on upstream"),
        ("Sum the price column of the orders table", "Sum the cost column of the orders table"),
        ("Restart the search pods in staging", "Restart the search pods in production"),
    ],
)
def test_a_changed_parameter_is_never_served_from_the_cache(
    client, team, wait_for_entries, minilm: MiniLM, cached: str, changed: str
) -> None:
    # The embeddings alone would call these the same question: the parameter guard must say no.
    assert float(np.dot(*minilm.encode([cached, changed]))) >= 0.85
    first, _ = ask(client, cached)
    stored(wait_for_entries, team, 1)

    answer, headers = ask(client, changed)

    assert headers["x-gateway-cache"] == "MISS"
    assert answer != first


def test_entries_never_cross_tenants_or_namespaces(gateway_url, client, team, wait_for_entries) -> None:
    prompt = "Explain what this regular expression does"
    ask(client, prompt)
    stored(wait_for_entries, team, 1)

    other_tenant = client_for(gateway_url, make_team())
    assert ask(other_tenant, prompt)[1]["x-gateway-cache"] == "MISS"
    other_system = {"role": "system", "content": "You are a poet."}
    assert ask(client, prompt, system=other_system)[1]["x-gateway-cache"] == "MISS"
    assert ask(client, prompt, extra_headers={"X-Gateway-Cache-Key": "repo@abc"})[1]["x-gateway-cache"] == "MISS"
    assert ask(client, prompt, metadata={"cache_key": "repo@def"})[1]["x-gateway-cache"] == "MISS"
    assert ask(client, prompt, max_tokens=7)[1]["x-gateway-cache"] == "MISS"
    assert ask(client, prompt)[1]["x-gateway-cache"] == "HIT"


def test_no_cache_skips_the_lookup_and_no_store_bypasses(client, team, wait_for_entries) -> None:
    prompt = "What is the time complexity of quicksort?"
    _, headers = ask(client, prompt, extra_headers={"X-Gateway-Cache": "no-store"})
    assert headers["x-gateway-cache"] == "BYPASS"
    _, headers = ask(client, prompt, extra_headers={"X-Gateway-Cache": "no-cache"})
    assert headers["x-gateway-cache"] == "MISS"
    stored(wait_for_entries, team, 1)  # no-cache stored; no-store did not
    _, headers = ask(client, prompt, extra_headers={"X-Gateway-Cache": "no-cache"})
    assert headers["x-gateway-cache"] == "MISS"
    assert ask(client, prompt)[1]["x-gateway-cache"] == "HIT"
    assert ask(client, prompt, extra_headers={"X-Gateway-Cache": "no-store"})[1]["x-gateway-cache"] == "BYPASS"


def test_policy_rules_bypass_the_cache(client, team) -> None:
    CachePolicy.objects.create(tenant=team.tenant, max_temperature=0.5)
    assert ask(client, "Tell me a story", temperature=0.9)[1]["x-gateway-cache"] == "BYPASS"
    tools = [{"type": "function", "function": {"name": "delete_file", "parameters": {"type": "object"}}}]
    assert ask(client, "Tidy up the repo", tools=tools)[1]["x-gateway-cache"] == "BYPASS"


def test_a_streaming_client_gets_the_cached_answer_replayed(client, team, wait_for_entries) -> None:
    prompt = "Describe the build pipeline in detail [[mock: words=40]]"
    answer, _ = ask(client, prompt)
    stored(wait_for_entries, team, 1)

    with client.chat.completions.with_streaming_response.create(
        model="simple_ops",
        messages=[SYSTEM, {"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-gateway-cache"] == "HIT"
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.parse())

    content = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(content) == answer and len(content) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_a_completed_stream_is_stored(client, team, wait_for_entries) -> None:
    prompt = "Stream me the summary of the changelog"
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="simple_ops", messages=[SYSTEM, {"role": "user", "content": prompt}], stream=True
        )
        if chunk.choices
    )
    [entry] = stored(wait_for_entries, team, 1)
    assert entry.completion_tokens > 0 and entry.cost_usd > 0

    answer, headers = ask(client, prompt)
    assert headers["x-gateway-cache"] == "HIT" and answer == streamed


def test_a_paced_stream_relayed_in_runs_is_stored_whole(client, team, wait_for_entries) -> None:
    # One event per network read: the relay forwards each read as it came (a run), unparsed.
    prompt = "Stream me the changelog slowly [[mock: words=30 tps=200]]"
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="simple_ops", messages=[SYSTEM, {"role": "user", "content": prompt}], stream=True
        )
        if chunk.choices
    )
    assert len(streamed.split()) > 30
    [entry] = stored(wait_for_entries, team, 1)
    assert entry.completion_tokens == len(streamed.split())  # the mock counts a token per word

    answer, headers = ask(client, prompt)
    assert headers["x-gateway-cache"] == "HIT" and answer == streamed


def test_failed_answers_are_not_stored(client, team, wait_for_entries) -> None:
    with pytest.raises(openai.APIStatusError):
        ask(client, "This fails [[mock: status=500]]")
    assert wait_for_entries(1, timeout=0.5, tenant_id=team.tenant_id) == []


def test_entries_expire_with_the_ttl(client, team, wait_for_entries) -> None:
    # 10 s: the semantic hit below must land inside the TTL even on a busy machine.
    CachePolicy.objects.create(tenant=team.tenant, ttl_seconds=10)
    ask(client, "How do I reverse a list in Python?")
    [entry] = stored(wait_for_entries, team, 1)
    assert ask(client, "How can I reverse a list in Python?")[1]["x-gateway-cache"] == "SEMANTIC"

    # Wait for the expiry itself (the entry's own deadline, then Redis's), not for a guessed time.
    deadline = time.monotonic() + 30
    while timezone.now() <= entry.expires_at or sync_client().exists(entry.exact_key):
        assert time.monotonic() < deadline, "the entry never expired"
        time.sleep(0.2)
    assert sync_client().exists(entry.exact_key) == 0  # the exact layer forgot it
    assert ask(client, "How can I reverse a list in Python?")[1]["x-gateway-cache"] == "MISS"  # and the semantic one


def test_without_a_global_policy_the_cache_is_off(client, team) -> None:
    CachePolicy.objects.filter(tenant=None).delete()
    assert ask(client, "Is the cache on?")[1]["x-gateway-cache"] == "BYPASS"
    assert ask(client, "Is the cache on?")[1]["x-gateway-cache"] == "BYPASS"


def test_models_listing_is_unaffected(client) -> None:
    assert "simple_ops" in {model.id for model in client.models.list()}

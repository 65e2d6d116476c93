"""The semantic cache's provider embedding calls are paid for: billed to the tenant on the request's usage event.

Through the real gateway and the mock upstream, whose own ledger (``usage`` on
its request records, keyed by the gateway's request id) is what the provider
charged: the event's cost must equal that ledger priced by the model table —
the chat call and the embedding call on a miss, the embedding call alone on a
semantic hit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import httpx2
import openai
import pytest

from billing.costs import cost_usd
from billing.models import UsageEvent
from caching.models import CacheEntry, CachePolicy
from gateway_platform.redis_clients import sync_client
from providers.adapters.base import Usage
from routing.catalog import load_catalog
from tenants.models import ApiKey
from tests.factories import make_budget, make_key, make_model, make_provider, make_team

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(mock_upstream_url: str) -> tuple[str, int]:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    make_model(provider, name="chatty", upstream_model="chatty-1", input_cost="2", output_cost="4")
    make_model(provider, name="embedder", upstream_model="embedder-1", input_cost="50", output_cost="0")
    CachePolicy.objects.create(tenant=None)
    team = make_team()
    CachePolicy.objects.create(
        tenant=team.tenant, embedder="provider", embedding_model="embedder", embedding_dimensions=512
    )
    return make_key(team)[1], team.tenant_id


def priced_ledger(mock_upstream_url: str, request_id: str) -> tuple[Decimal, list[str]]:
    """What the mock served for ``request_id``, priced by the model table; and the paths it was called on."""
    upstream = {d.upstream_model: d for d in load_catalog()[0].values()}
    records = [r for r in httpx2.get(f"{mock_upstream_url}/_mock/events").json() if r["id"] == request_id]
    total = Decimal(0)
    for record in records:
        tokens = record["usage"]
        total += cost_usd(upstream[record["model"]], Usage(tokens["prompt_tokens"], tokens["completion_tokens"]))
    return total, sorted(r["path"] for r in records)


def test_cache_embeddings_are_billed_on_a_miss_and_on_a_semantic_hit(
    gateway_url: str,
    mock_upstream_url: str,
    secret: tuple[str, int],
    drained_events: Callable[..., list[UsageEvent]],
    wait_for_entries: Callable[..., list[CacheEntry]],
) -> None:
    key, tenant_id = secret
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": "Explain the billing of cache embeddings"}]

    miss = client.chat.completions.with_raw_response.create(model="chatty", messages=messages)
    assert miss.headers["x-gateway-cache"] == "MISS"
    [entry] = wait_for_entries(1, tenant_id=tenant_id)
    [event] = drained_events(1, request_id=miss.headers["x-request-id"])
    ledger, paths = priced_ledger(mock_upstream_url, event.request_id)
    assert paths == ["/v1/chat/completions", "/v1/embeddings"]  # both calls under the request's id
    assert event.cost_usd == ledger
    [embedding] = [a for a in event.attempts if a.get("cache_embedding")]
    assert embedding["model"] == "embedder" and Decimal(embedding["cost_usd"]) > 0

    sync_client().delete(entry.exact_key)  # only the semantic layer can answer now
    hit = client.chat.completions.with_raw_response.create(model="chatty", messages=messages)
    assert hit.headers["x-gateway-cache"] == "SEMANTIC"
    [event] = drained_events(1, request_id=hit.headers["x-request-id"])
    ledger, paths = priced_ledger(mock_upstream_url, event.request_id)
    assert paths == ["/v1/embeddings"]
    assert event.cost_usd == ledger > 0  # no upstream answer, but the embedding was paid for


def quoted_cost(response: httpx2.Response) -> Decimal:
    """The most the request could cost, as a budget refusal states it."""
    message = response.json()["error"]["message"]
    return Decimal(re.search(r"could cost up to ([0-9.]+) USD", message).group(1))


def test_the_embedding_is_part_of_the_budget_reservation(gateway_url: str, secret: tuple[str, int]) -> None:
    """A provider embedding that the lookup will make is reserved with the chat call: a budget refusal counts it."""
    key, _ = secret
    plain_key = make_key()[1]  # another tenant: the global policy, no provider embedder
    for api_key in ApiKey.objects.all():
        make_budget("0.0001", api_key=api_key)  # too small for any call: refused, with the reservation quoted
    prompt = " ".join(f"Point {n}: how is a cache embedding reserved against budget {n * 7}?" for n in range(8))
    body = {"model": "chatty", "messages": [{"role": "user", "content": prompt}], "max_tokens": 5}

    def refused(secret_key: str) -> httpx2.Response:
        response = httpx2.post(
            f"{gateway_url}/v1/chat/completions", headers={"Authorization": f"Bearer {secret_key}"}, json=body
        )
        assert response.status_code == 429 and response.json()["error"]["code"] == "budget_exceeded"
        return response

    with_embedding, without = quoted_cost(refused(key)), quoted_cost(refused(plain_key))
    # The embedded text is the prompt: at most its UTF-8 bytes in tokens, at the embedder's $50 per million.
    assert with_embedding - without == pytest.approx(Decimal(len(prompt.encode())) * 50 / 1_000_000, abs=2e-6)

"""The semantic cache's provider embedding calls are paid for: billed to the tenant on the request's usage event.

Through the real gateway and the mock upstream, whose own ledger (``usage`` on
its request records, keyed by the gateway's request id) is what the provider
charged: the event's cost must equal that ledger priced by the model table —
the chat call and the embedding call on a miss, the embedding call alone on a
semantic hit.
"""

from __future__ import annotations

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
from tests.factories import make_key, make_model, make_provider, make_team

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

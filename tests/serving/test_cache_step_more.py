"""More of the cache through a real Daphne gateway: the provider embedder and ``/v1/messages``."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import openai
import pytest
from asgiref.sync import async_to_sync

from caching.embedders.provider import ProviderEmbedder
from caching.models import CacheEntry, CachePolicy
from gateway_platform.redis_clients import sync_client
from serving.cache_step import _embed
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(mock_upstream_url: str) -> tuple[str, int]:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    model = make_model(provider, name="mock-small", upstream_model="mock-small-1", input_cost="2", output_cost="4")
    make_model(provider, name="mock-embed", upstream_model="mock-embed-1", input_cost="0.02", output_cost="0")
    make_tier("simple_ops", [model])
    CachePolicy.objects.create(tenant=None)
    team = make_team()
    return make_key(team)[1], team.tenant_id


def test_the_provider_embedder_fills_the_semantic_layer(
    gateway_url: str, setup: tuple[str, int], wait_for_entries: Callable[..., list[CacheEntry]]
) -> None:
    secret, tenant_id = setup
    CachePolicy.objects.create(
        tenant_id=tenant_id, embedder="provider", embedding_model="mock-embed", embedding_dimensions=512
    )
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)
    messages = [{"role": "user", "content": "Describe the deployment process"}]
    client.chat.completions.create(model="simple_ops", messages=messages)
    [entry] = wait_for_entries(1, tenant_id=tenant_id)
    assert (entry.embedder, entry.dimensions) == ("provider:mock-embed:512", 512)
    sync_client().delete(entry.exact_key)  # only the semantic layer can answer now

    raw = client.chat.completions.with_raw_response.create(model="simple_ops", messages=messages)
    assert raw.headers["x-gateway-cache"] == "SEMANTIC"
    assert float(raw.headers["x-gateway-cache-similarity"]) == pytest.approx(1.0, abs=1e-3)


class WrongSize:
    signature, dimensions = "fake:384", 384

    async def embed(self, text: str) -> list[float] | None:
        return [0.1] * 100


def test_a_vector_of_the_wrong_size_is_refused() -> None:
    assert async_to_sync(_embed)(WrongSize(), "hello", phase="lookup") is None  # type: ignore[arg-type]


def test_an_unreachable_embedding_model_only_turns_the_semantic_layer_off() -> None:
    from providers.adapters.base import Deployment, ProviderConfig

    nowhere = ProviderConfig(1, "down", "openai", "http://127.0.0.1:9/v1", None, 0.2, 0.2, 0.5, 1)
    deployment = Deployment(1, "embed", "embed", nowhere, 0, 0, 8192, None)  # type: ignore[arg-type]
    assert async_to_sync(ProviderEmbedder(deployment, 384).embed)("hello") is None


def test_anthropic_messages_are_cached_too(
    gateway_url: str, setup: tuple[str, int], wait_for_entries: Callable[..., list[CacheEntry]]
) -> None:
    secret, tenant_id = setup
    client = anthropic.Anthropic(base_url=gateway_url, api_key=secret, max_retries=0)
    ask = {"model": "simple_ops", "max_tokens": 100, "messages": [{"role": "user", "content": "Name three colours"}]}
    first = client.messages.with_raw_response.create(**ask)
    assert first.headers["x-gateway-cache"] == "MISS"
    wait_for_entries(1, tenant_id=tenant_id)

    second = client.messages.with_raw_response.create(**ask)
    assert second.headers["x-gateway-cache"] == "HIT"
    assert second.parse().content[0].text == first.parse().content[0].text
    with client.messages.stream(**ask) as stream:
        assert stream.response.headers["x-gateway-cache"] == "HIT"
        assert stream.get_final_text() == first.parse().content[0].text

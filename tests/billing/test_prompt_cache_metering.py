"""Prompt-cache metering end to end: an Anthropic upstream (the mock) reports cache writes and reads,
the gateway prices them at the model's cache prices and records them on the usage event."""

from __future__ import annotations

import uuid
from decimal import Decimal

import openai
import pytest

from providers.models import Model
from routing.config_file import config_seed_defaults
from tests.conftest import MOCK_PROVIDER_KEY_ENV
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

MILLION = Decimal(1_000_000)


def test_cache_writes_and_reads_are_metered_and_priced(mock_upstream_url, gateway_url, drained_events) -> None:
    provider = make_provider(mock_upstream_url, kind="anthropic", name="claude", api_key_env=MOCK_PROVIDER_KEY_ENV)
    make_model(provider, name="sonnet", upstream_model="claude-sonnet-4-5", input_cost="3", output_cost="15")
    Model.objects.filter(name="sonnet").update(
        cache_read_cost_per_million=Decimal("0.30"), cache_write_cost_per_million=Decimal("3.75")
    )
    make_tier("code_gen", [Model.objects.get(name="sonnet")])
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(make_team())[1], max_retries=0)
    system = f"Repository context {uuid.uuid4().hex}. " + "Follow the style guide. " * 200
    ids = []
    for question in ("List the modules", "Explain the settings module"):
        raw = client.chat.completions.with_raw_response.create(
            model="code_gen",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
            extra_headers={"X-Gateway-Cache": "no-store"},
        )
        ids.append(raw.headers["x-request-id"])
    [first] = drained_events(1, request_id=ids[0])
    [second] = drained_events(1, request_id=ids[1])
    assert first.cache_write_tokens > 1000 and first.cache_read_tokens == 0
    assert second.cache_read_tokens == first.cache_write_tokens and second.cache_write_tokens == 0
    fresh = second.prompt_tokens - second.cache_read_tokens
    expected = (
        fresh * Decimal(3) + second.cache_read_tokens * Decimal("0.30") + second.completion_tokens * Decimal(15)
    ) / MILLION
    assert second.cost_usd == expected
    assert second.prompt_cache_saved_usd == second.cache_read_tokens * Decimal("2.70") / MILLION
    assert first.prompt_cache_saved_usd == -first.cache_write_tokens * Decimal("0.75") / MILLION


def test_the_seeded_models_carry_cache_prices() -> None:
    config_seed_defaults()
    prices = {m.name: (m.cache_read_cost_per_million, m.cache_write_cost_per_million) for m in Model.objects.all()}
    assert prices["sonnet-4.5"] == (Decimal("0.30"), Decimal("3.75"))
    assert prices["deepseek-v3"] == (Decimal("0.07"), None)
    assert prices["gpt-5.5"] == (Decimal("0.50"), None)

"""Admin edits reach running gateway processes without a restart; usage is exactly-once."""

from __future__ import annotations

import asyncio
import time

import openai
import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from billing import usage
from gateway_platform.redis_clients import sync_client
from routing.models import TierModel
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(mock_upstream_url: str):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    cheap = make_model(provider, name="cheap", upstream_model="cheap-1")
    strong = make_model(provider, name="strong", upstream_model="strong-1")
    tier = make_tier("code_gen", [cheap])
    key, secret = make_key()
    return tier, cheap, strong, key, secret


def client_for(gateway_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)


def ask(client: openai.OpenAI, model: str = "code_gen"):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "which model?"}]
    )


def test_an_admin_edit_takes_effect_on_the_next_request(gateway_url, setup):
    tier, _, strong, _, secret = setup
    client = client_for(gateway_url, secret)
    assert ask(client).headers["x-gateway-model"] == "cheap"

    admin = get_user_model().objects.create_superuser("root", password="pw-for-tests-only")
    browser = Client()
    browser.force_login(admin)
    rows = list(TierModel.objects.filter(tier=tier))
    response = browser.post(
        f"/admin/routing/tier/{tier.pk}/change/",
        {
            "name": tier.name,
            "description": "now strong",
            "capabilities": "",
            "max_cost_per_million": "",
            "enabled": "on",
            "tier_models-TOTAL_FORMS": "1",
            "tier_models-INITIAL_FORMS": "1",
            "tier_models-MIN_NUM_FORMS": "0",
            "tier_models-MAX_NUM_FORMS": "1000",
            "tier_models-0-id": str(rows[0].pk),
            "tier_models-0-tier": str(tier.pk),
            "tier_models-0-model": str(strong.pk),
            "tier_models-0-position": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ask(client).headers["x-gateway-model"] == "strong"


def test_revoking_a_key_refuses_the_very_next_request(gateway_url, setup):
    _, _, _, key, secret = setup
    client = client_for(gateway_url, secret)
    assert ask(client).status_code == 200
    admin = get_user_model().objects.create_superuser("root", password="pw-for-tests-only")
    browser = Client()
    browser.force_login(admin)
    response = browser.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [str(key.pk)]})
    assert response.status_code == 302
    with pytest.raises(openai.PermissionDeniedError) as excinfo:
        ask(client)
    assert excinfo.value.code == "key_revoked"


async def test_every_request_leaves_exactly_one_usage_event_under_concurrency(gateway_url, setup, drained_events):
    *_, secret = setup
    client = openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)

    async def one(i: int) -> str:
        raw = await client.chat.completions.with_raw_response.create(
            model="code_gen", stream=i % 2 == 0, messages=[{"role": "user", "content": f"request {i}"}]
        )
        if i % 2 == 0:
            async for _ in raw.parse():
                pass
        return raw.headers["x-request-id"]

    request_ids = await asyncio.gather(*(one(i) for i in range(100)))
    assert len(set(request_ids)) == 100
    queued = await asyncio.to_thread(queued_records, set(request_ids))
    events = await asyncio.to_thread(drained_events, 100, request_id__in=request_ids)
    assert len(events) == 100
    assert {e.request_id for e in events} == set(request_ids)
    assert sum(e.stream for e in events) == 50
    # A redelivery: the very same 100 records arrive again (a drainer crashed after writing,
    # before acknowledging). Draining them must not add or change a row.
    before = {e.request_id: (e.pk, e.cost_usd, e.completion_tokens) for e in events}
    stream = sync_client()
    for fields in queued:
        stream.xadd(usage.STREAM, fields)
    await asyncio.to_thread(usage.drain)
    again = await asyncio.to_thread(drained_events, 100, request_id__in=request_ids)
    assert {e.request_id: (e.pk, e.cost_usd, e.completion_tokens) for e in again} == before


def queued_records(request_ids: set[str], timeout: float = 30.0) -> list[dict[bytes, bytes]]:
    """The usage stream's entries for ``request_ids`` (they are queued after each answer is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [
            f for _, f in sync_client().xrange(usage.STREAM) if orjson.loads(f[b"e"])["request_id"] in request_ids
        ]
        if len(entries) >= len(request_ids) or time.monotonic() > deadline:
            assert len(entries) == len(request_ids), "not every request queued its usage record"
            return entries
        time.sleep(0.05)

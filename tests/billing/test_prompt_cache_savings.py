"""Provider prompt caching in rollups, `/api/usage/` and `/reports/`: hit rate and money saved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from billing import rollups
from billing.models import UsageEvent, UsageRollup
from routing.models import RoutingPolicy
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = datetime(2026, 11, 10, 9, tzinfo=UTC)


def event(key, *, prompt: int, read: int, write: int, cost: str, saved: str) -> UsageEvent:
    return UsageEvent.objects.create(
        request_id=uuid.uuid4().hex,
        tenant_id=key.team.tenant_id,
        team_id=key.team_id,
        api_key_id=key.pk,
        endpoint="chat.completions",
        model="sonnet",
        provider="anthropic",
        tier="code_gen",
        prompt_tokens=prompt,
        completion_tokens=0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cost_usd=Decimal(cost),
        prompt_cache_saved_usd=Decimal(saved),
        session="s-1",
        cache_status="MISS",
        status_code=200,
        started_at=HOUR + timedelta(minutes=5),
        finished_at=HOUR + timedelta(minutes=5),
    )


@pytest.fixture
def key():
    provider = make_provider("http://upstream.invalid", name="anthropic", kind="anthropic")
    sonnet = make_model(provider, name="sonnet", input_cost="3", output_cost="15")
    make_tier("code_gen", [sonnet])
    RoutingPolicy.objects.create(tenant=None, baseline_tier="code_gen")
    return make_key(make_team("acme"))[0]


def test_rollups_sum_cache_tokens_and_savings_without_counting_them_as_routing(key):
    # Turn 1 writes 4,000 prompt tokens to the cache; turn 2 reads them (sonnet: read 0.30, write 3.75).
    event(key, prompt=4_000, read=0, write=4_000, cost="0.015", saved="-0.003")
    event(key, prompt=5_000, read=4_000, write=0, cost="0.0042", saved="0.0108")
    rollups.rollup_hour(hour=HOUR)
    [row] = UsageRollup.objects.filter(granularity="hour")
    assert (row.cache_read_tokens, row.cache_write_tokens) == (4_000, 4_000)
    assert row.saved_by_prompt_cache_usd == Decimal("0.0078")
    # Served on the baseline tier's own model: routing saved nothing, prompt caching is not routing.
    assert row.saved_by_routing_usd == 0


def test_usage_api_and_reports_show_the_prompt_cache_hit_rate_and_savings(key):
    event(key, prompt=4_000, read=0, write=4_000, cost="0.015", saved="-0.003")
    event(key, prompt=5_000, read=4_000, write=0, cost="0.0042", saved="0.0108")
    rollups.rollup_hour(hour=HOUR)
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    api = APIClient()
    api.force_authenticate(root)
    [total] = api.get("/api/usage/", {"start": "2026-11-10", "end": "2026-11-10"}).data["results"]
    assert total["cache_read_tokens"] == 4_000 and total["cache_write_tokens"] == 4_000
    assert Decimal(total["saved_by_prompt_cache_usd"]) == Decimal("0.0078")
    assert total["prompt_cache_hit_rate"] == round(4_000 / 9_000, 4)

    web = Client()
    web.force_login(root)
    html = web.get("/reports/?start=2026-11-10&end=2026-11-10").content.decode()
    assert "Prompt-cache hit rate" in html and "44.4" in html
    assert "Provider prompt caching" in html


def test_the_monthly_statement_shows_savings_by_mechanism_with_a_chart_and_reconciles(key):
    event(key, prompt=4_000, read=0, write=4_000, cost="0.015", saved="-0.003")
    event(key, prompt=5_000, read=4_000, write=0, cost="0.0042", saved="0.0108")
    for status, saved in (("HIT", "0.02"), ("SEMANTIC", "0.05")):
        cached = event(key, prompt=0, read=0, write=0, cost="0", saved="0")
        UsageEvent.objects.filter(pk=cached.pk).update(cache_status=status, cost_saved_usd=Decimal(saved))
    rollups.rollup_range(start=HOUR, end=HOUR + timedelta(hours=1))
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    web = Client()
    web.force_login(root)
    slug = key.team.tenant.slug
    html = web.get(f"/reports/statement/{slug}/2026-11/").content.decode()
    assert 'id="savings-chart-title"' in html and "Savings by mechanism" in html
    assert "Exact cache" in html and "Semantic cache" in html and "Provider prompt caching" in html
    reconciliation = html.split('id="reconciliation"')[1].split("</table>")[0]
    assert reconciliation.count("<td>yes</td>") == 5
    csv = web.get(f"/reports/statement/{slug}/2026-11/csv/?table=savings").content.decode()
    rows = {line.split(",")[0]: line.split(",")[1] for line in csv.strip().splitlines()[1:]}
    assert Decimal(rows["Exact cache"]) == Decimal("0.02") and Decimal(rows["Semantic cache"]) == Decimal("0.05")
    assert Decimal(rows["Provider prompt caching"]) == Decimal("0.0078")


def test_usage_events_can_be_found_by_session_in_the_admin(key):
    mine = event(key, prompt=10, read=0, write=0, cost="0", saved="0")
    other = event(key, prompt=10, read=0, write=0, cost="0", saved="0")
    UsageEvent.objects.filter(pk=other.pk).update(session="another-session")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    web = Client()
    web.force_login(root)
    html = web.get("/admin/billing/usageevent/", {"q": "s-1"}).content.decode()
    assert mine.request_id in html and other.request_id not in html

"""Rollups equal the sums of raw events for every dimension; recomputing a period is idempotent."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum

from billing import rollups
from billing.models import UsageEvent, UsageRollup
from billing.periods import day_bounds
from routing.models import RoutingPolicy
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

DAY = date(2026, 11, 10)
MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits", "saved_by_cache_usd")
DIMENSIONS = ("tenant_id", "team_id", "api_key_id", "model", "provider", "tier")


@pytest.fixture
def world():
    """Two tenants in different time zones, two teams, three keys, two models; a premium baseline tier."""
    provider = make_provider("http://upstream.invalid/v1", name="prov")
    small = make_model(provider, name="small", input_cost="1", output_cost="2")
    big = make_model(provider, name="big", input_cost="10", output_cost="30")
    make_tier("premium", [big])
    make_tier("fast", [small])
    RoutingPolicy.objects.create(tenant=None, baseline_tier="premium")
    berlin = make_team("berlin", "core").tenant
    berlin.timezone = "Europe/Berlin"
    berlin.save()
    tokyo_team = make_team("tokyo", "core")
    tokyo_team.tenant.timezone = "Asia/Tokyo"
    tokyo_team.tenant.save()
    keys = [make_key(make_team("berlin", "core"))[0], make_key(make_team("berlin", "web"))[0], make_key(tokyo_team)[0]]
    return keys


def events_for(keys, count: int = 400, seed: int = 7) -> list[UsageEvent]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 9, 12, tzinfo=UTC)
    events = []
    for _ in range(count):
        key = rng.choice(keys)
        model = rng.choice(["small", "big"])
        prompt, completion = rng.randint(0, 2000), rng.randint(0, 500)
        price_in, price_out = (1, 2) if model == "small" else (10, 30)
        status = rng.choice([200] * 9 + [502])
        cache = rng.choice(["MISS", "MISS", "BYPASS", "HIT", "SEMANTIC"])
        started = start + timedelta(seconds=rng.randint(0, 36 * 3600))
        events.append(
            UsageEvent(
                request_id=uuid.uuid4().hex,
                tenant_id=key.team.tenant_id,
                team_id=key.team_id,
                api_key_id=key.pk,
                endpoint="chat.completions",
                model=model,
                provider="prov",
                tier=rng.choice(["fast", "premium", ""]),
                prompt_tokens=prompt if status == 200 else 0,
                completion_tokens=completion if status == 200 else 0,
                cost_usd=Decimal(prompt * price_in + completion * price_out) / 1_000_000 if status == 200 else 0,
                cost_saved_usd=Decimal("0.001") if cache in ("HIT", "SEMANTIC") else 0,
                cache_status=cache,
                tokens_saved={"trim_context": rng.randint(0, 300)} if rng.random() < 0.3 else {},
                status_code=status,
                started_at=started,
                finished_at=started,
            )
        )
    return UsageEvent.objects.bulk_create(events)


def sums(queryset, dimension: str) -> dict[object, tuple]:
    rows = queryset.values(dimension).annotate(**{m: Sum(m) for m in MEASURES if m != "requests"})
    return {row[dimension]: tuple(row[m] for m in MEASURES if m != "requests") for row in rows}


def raw_sums(queryset, dimension: str) -> dict[object, tuple]:
    annotations = {
        "errors": Count("pk", filter=Q(status_code__gte=400)),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "cost_usd": Sum("cost_usd"),
        "cache_hits": Count("pk", filter=Q(cache_status__in=["HIT", "SEMANTIC"])),
        "saved_by_cache_usd": Sum("cost_saved_usd"),
    }
    rows = queryset.values(dimension).annotate(**annotations)
    return {row[dimension]: tuple(row[m] for m in MEASURES if m != "requests") for row in rows}


def roll_everything() -> None:
    rollups.rollup_range(start=datetime(2026, 11, 8, tzinfo=UTC), end=datetime(2026, 11, 12, tzinfo=UTC))


def test_hour_and_day_rollups_equal_the_raw_sums_for_every_dimension(world):
    events_for(world)
    roll_everything()
    raw = UsageEvent.objects.all()
    for granularity in ("hour", "day"):
        rolled = UsageRollup.objects.filter(granularity=granularity)
        assert rolled.aggregate(n=Sum("requests"))["n"] == raw.count()
        for dimension in DIMENSIONS:
            assert sums(rolled, dimension) == raw_sums(raw, dimension), (granularity, dimension)


def test_day_rollups_are_tenant_local_days(world):
    events_for(world)
    roll_everything()
    berlin = world[0].team.tenant
    start, end = day_bounds(DAY, "Europe/Berlin")
    row_total = UsageRollup.objects.filter(granularity="day", tenant=berlin, period_start=start).aggregate(
        n=Sum("requests")
    )["n"]
    raw_total = UsageEvent.objects.filter(tenant=berlin, started_at__gte=start, started_at__lt=end).count()
    assert row_total == raw_total > 0
    assert start == datetime(2026, 11, 9, 23, tzinfo=UTC)


def test_savings_by_routing_and_token_reduction(world):
    key = world[0]
    now = datetime(2026, 11, 10, 10, 30, tzinfo=UTC)
    common = {"tenant_id": key.team.tenant_id, "team_id": key.team_id, "api_key_id": key.pk, "provider": "prov"}
    common |= {"endpoint": "chat.completions", "status_code": 200, "started_at": now, "finished_at": now}
    UsageEvent.objects.create(
        request_id="routed",
        model="small",
        tier="fast",
        prompt_tokens=1000,
        completion_tokens=100,
        cost_usd=Decimal("0.0012"),
        tokens_saved={"trim_context": 500, "dedupe_files": 250},
        **common,
    )
    UsageEvent.objects.create(request_id="named", model="small", tier="", prompt_tokens=1000, cost_usd=1, **common)
    UsageEvent.objects.create(
        request_id="hit", model="small", tier="fast", cache_status="HIT", cost_saved_usd=Decimal("0.5"), **common
    )
    rollups.rollup_hour(hour=now)
    row = UsageRollup.objects.get(granularity="hour", tier="fast")
    # Baseline "premium" (big: 10/30 per million): 1000*10 + 100*30 = 0.013 USD, minus 0.0012 actually paid.
    assert row.saved_by_routing_usd == Decimal("0.0118")
    assert row.tokens_saved == 750
    assert row.saved_by_reduction_usd == Decimal("0.00075")  # 750 tokens at small's 1 USD per million
    assert row.saved_by_cache_usd == Decimal("0.5") and row.cache_hits == 1 and row.requests == 2
    assert UsageRollup.objects.get(granularity="hour", tier="").saved_by_routing_usd == 0


def test_recomputing_a_period_is_idempotent_and_picks_up_late_events(world):
    events_for(world)
    roll_everything()
    before = list(UsageRollup.objects.order_by("granularity", "period_start", "api_key_id", "model", "tier").values())
    roll_everything()
    after = list(UsageRollup.objects.order_by("granularity", "period_start", "api_key_id", "model", "tier").values())
    strip = [{k: v for k, v in row.items() if k != "id"} for row in before]
    assert strip == [{k: v for k, v in row.items() if k != "id"} for row in after]
    late = events_for(world, count=1, seed=99)[0]
    rollups.rollup_hour(hour=late.started_at)
    hour_total = UsageRollup.objects.filter(granularity="hour").aggregate(n=Sum("requests"))["n"]
    assert hour_total == UsageEvent.objects.count()


def test_days_that_are_not_over_get_no_day_rows(world):
    now = datetime.now(UTC)
    rollups.rollup_day(day=now.date() + timedelta(days=1))
    assert not UsageRollup.objects.filter(granularity="day").exists()


def test_the_nightly_close_rolls_up_yesterday_in_each_tenant_time_zone(world):
    events_for(world)
    # 00:30 in Tokyo (15:30 UTC): Tokyo's Nov 10 is closed, Berlin's (16:30 there) is not yet.
    rollups.rollup_days_due(now=datetime(2026, 11, 10, 15, 30, tzinfo=UTC))
    closed = set(UsageRollup.objects.filter(granularity="day").values_list("tenant__timezone", "period_start"))
    assert closed == {("Asia/Tokyo", day_bounds(DAY, "Asia/Tokyo")[0])}

"""Old raw events go but rollups stay (and budgets still see the spend); Redis counters are reconciled."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from billing import spend
from billing.budgets import BudgetClaim, budget_key, usd_to_nano
from billing.limits import load_limits
from billing.models import UsageEvent, UsageRollup
from billing.periods import period_containing
from billing.retention import retention_mark, usage_prune
from gateway_platform.redis_clients import sync_client
from tests.factories import make_budget, make_key

pytestmark = pytest.mark.django_db(transaction=True)


def event(key, *, ago: timedelta, cost: str) -> UsageEvent:
    started = timezone.now() - ago
    return UsageEvent.objects.create(
        request_id=uuid.uuid4().hex,
        tenant_id=key.team.tenant_id,
        team_id=key.team_id,
        api_key=key,
        endpoint="chat.completions",
        model="m",
        status_code=200,
        cost_usd=Decimal(cost),
        started_at=started,
        finished_at=started,
    )


@pytest.fixture
def retention(settings):
    settings.GATEWAY = {**settings.GATEWAY, "USAGE_RETENTION_DAYS": 30}


def test_without_a_retention_setting_nothing_is_deleted():
    key, _ = make_key()
    event(key, ago=timedelta(days=400), cost="1")
    assert usage_prune(now=timezone.now()) == 0
    assert UsageEvent.objects.count() == 1


def test_pruning_rolls_up_first_and_keeps_the_rollups(retention):
    key, _ = make_key()
    event(key, ago=timedelta(days=40), cost="1.5")
    event(key, ago=timedelta(days=35), cost="2")
    event(key, ago=timedelta(days=1), cost="0.25")
    assert usage_prune(now=timezone.now()) == 2
    assert list(UsageEvent.objects.values_list("cost_usd", flat=True)) == [Decimal("0.25")]
    for granularity in ("hour", "day"):
        total = UsageRollup.objects.filter(granularity=granularity).aggregate(t=Sum("cost_usd"))["t"]
        assert total == Decimal("3.5")
    assert retention_mark() is not None
    assert usage_prune(now=timezone.now()) == 0  # idempotent


def test_a_total_budget_still_counts_pruned_spend(retention):
    key, _ = make_key()
    event(key, ago=timedelta(days=40), cost="1.5")
    event(key, ago=timedelta(hours=2), cost="0.25")
    budget = make_budget("100", api_key=key, period="total")
    [info] = load_limits().budgets_by_key[key.pk]
    period = period_containing("total", "UTC", timezone.now())
    assert spend.budget_spend(budget=info, period=period, now=timezone.now()) == Decimal("1.75")
    usage_prune(now=timezone.now())
    assert spend.budget_spend(budget=info, period=period, now=timezone.now()) == Decimal("1.75")
    assert budget.pk == info.id


def test_reconciliation_raises_an_under_count_and_only_logs_an_over_count(caplog):
    key, _ = make_key()
    event(key, ago=timedelta(seconds=5), cost="0.40")
    budget = make_budget("10", api_key=key)
    [info] = load_limits().budgets_by_key[key.pk]
    period = period_containing(info.period, info.timezone, timezone.now())
    redis_key = budget_key(budget.pk, period)
    client = sync_client()
    client.delete("gateway:usage")  # no backlog: the database is complete

    client.hset(redis_key, mapping={"s": usd_to_nano(Decimal("0.10")), "r": 0})  # Redis lost a settlement
    [drift] = spend.budgets_reconcile()
    assert drift.corrected and int(client.hget(redis_key, "s")) == usd_to_nano(Decimal("0.40"))
    assert "budget counter drift" in caplog.text

    client.hset(redis_key, mapping={"s": usd_to_nano(Decimal("0.10")), "r": usd_to_nano(Decimal("0.30"))})
    assert spend.budgets_reconcile() == []  # the gap is what is in flight

    client.hset(redis_key, mapping={"s": usd_to_nano(Decimal("0.90")), "r": 0})
    [drift] = spend.budgets_reconcile()
    assert not drift.corrected and int(client.hget(redis_key, "s")) == usd_to_nano(Decimal("0.90"))
    assert BudgetClaim(info, period, 0).key == redis_key

"""A key budget follows the logical key: rotating never restarts it, and the grace period shares it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import limits, spend
from billing.models import Budget, UsageEvent
from billing.periods import period_containing
from tenants.services import api_key_rotate
from tests.factories import make_budget, make_key

pytestmark = pytest.mark.django_db


def spent_by(key, usd: str) -> None:
    now = timezone.now()
    UsageEvent.objects.create(
        request_id=uuid.uuid4().hex,
        tenant=key.team.tenant,
        team=key.team,
        api_key=key,
        endpoint="chat.completions",
        status_code=200,
        cost_usd=Decimal(usd),
        started_at=now - timedelta(seconds=5),
        finished_at=now,
    )


def test_rotation_keeps_the_budget_and_its_spend():
    key, _ = make_key()
    budget = make_budget("1", api_key=key)
    spent_by(key, "0.75")
    first = api_key_rotate(api_key=key, grace=timedelta(hours=1)).api_key
    spent_by(key, "0.05")  # the old key, during its grace period
    second = api_key_rotate(api_key=first, grace=timedelta(0)).api_key

    [moved] = Budget.objects.filter(api_key=second)
    assert moved.pk == budget.pk  # the same row: the same Redis counters, no restart at $0
    loaded = limits.load_limits()
    [info] = loaded.budgets_by_key[second.pk]
    assert set(info.lineage) == {key.pk, first.pk, second.pk}
    # The old keys spend from the very same budget (not a full copy each).
    assert [b.id for b in loaded.budgets_by_key[key.pk]] == [budget.pk]
    assert [b.id for b in loaded.budgets_by_key[first.pk]] == [budget.pk]
    now = timezone.now()
    period = period_containing(info.period, info.timezone, now)
    assert spend.budget_spend(budget=info, period=period, now=now) == Decimal("0.80")

"""Spend per budget period as PostgreSQL knows it, and reconciliation of the Redis counters.

Redis holds the authoritative running total of each budget period (settled
spend plus in-flight reservations, see ``billing.enforcement``). It is seeded
from PostgreSQL when a period has no counter yet — the first request of a
period, a budget created mid-period, or a Redis that lost its data — and
checked against PostgreSQL by ``budgets_reconcile`` (Celery beat).

Seeding sums raw ``UsageEvent`` rows (index-only scans on the covering
``(scope, started_at) INCLUDE (cost_usd)`` indexes). Raw events before the
retention mark may be gone, so the tenant-local days up to the one holding the
mark come from day rollups instead (``billing.retention`` rolls those days up
before it moves the mark and deletes anything).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from billing.budgets import BudgetClaim, nano_to_usd, usd_to_nano
from billing.limits import BudgetInfo, load_limits
from billing.models import UsageEvent, UsageRollup
from billing.periods import Period, local_date, local_midnight, period_containing, zone
from billing.retention import retention_mark
from gateway_platform.redis_clients import sync_client

logger = logging.getLogger(__name__)

_SCOPE_FIELD = {"key": "api_key_id", "team": "team_id", "tenant": "tenant_id"}


def _scope_filter(budget: BudgetInfo) -> Q:
    if budget.scope == "key" and budget.lineage:
        condition = Q(api_key_id__in=budget.lineage)  # the logical key: every key rotated into this one
    else:
        condition = Q(**{_SCOPE_FIELD[budget.scope]: budget.scope_id})
    if budget.model:
        condition &= Q(model=budget.model)
    return condition


def rollup_horizon(tz_name: str) -> datetime | None:
    """The tenant-local midnight before which spend is read from day rollups (None: raw events are all there)."""
    mark = retention_mark()
    if mark is None:
        return None
    return local_midnight(local_date(mark, tz_name) + timedelta(days=1), zone(tz_name))


def budget_spend(*, budget: BudgetInfo, period: Period, now: datetime) -> Decimal:
    """USD spent against ``budget`` in ``period`` up to ``now``, from PostgreSQL."""
    scope = _scope_filter(budget)
    raw_from = period.start
    total = Decimal(0)
    horizon = rollup_horizon(budget.timezone)
    if horizon is not None and horizon > period.start:
        rolled = UsageRollup.objects.filter(
            scope, granularity=UsageRollup.Granularity.DAY, period_start__gte=period.start, period_start__lt=horizon
        ).aggregate(total=Sum("cost_usd"))["total"]
        total += rolled or Decimal(0)
        raw_from = horizon
    raw = UsageEvent.objects.filter(scope, started_at__gte=raw_from, started_at__lte=now).aggregate(
        total=Sum("cost_usd")
    )["total"]
    return total + (raw or Decimal(0))


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where a budget stands in its current period."""

    period_start: datetime
    period_end: datetime | None
    spent_usd: Decimal
    reserved_usd: Decimal  # held by requests in flight
    remaining_usd: Decimal
    source: str  # "redis" (live counter) or "database" (period not seeded yet)


def budget_status(*, budget: BudgetInfo, now: datetime) -> BudgetStatus:
    """The budget's current period, spend and what remains (the live Redis counter when there is one)."""
    period = period_containing(budget.period, budget.timezone, now)
    settled, reserved = sync_client().hmget(BudgetClaim(budget, period, 0).key, "s", "r")
    if settled is None:
        spent, held, source = budget_spend(budget=budget, period=period, now=now), Decimal(0), "database"
    else:
        spent, held, source = nano_to_usd(int(settled)), nano_to_usd(int(reserved or 0)), "redis"
    remaining = max(Decimal(0), budget.amount_usd - spent - held)
    return BudgetStatus(period.start, period.end, spent, held, remaining, source)


@dataclass(frozen=True, slots=True)
class Drift:
    """A budget period whose Redis counter disagrees with PostgreSQL."""

    budget_id: int
    period_start: datetime
    redis_usd: Decimal
    database_usd: Decimal
    in_flight_usd: Decimal
    corrected: bool


def _tolerance(amount: int) -> int:
    return max(1_000, amount // 1000)  # 1 µUSD or 0.1 %: per-request rounding up in Redis


def budgets_reconcile(*, now: datetime | None = None) -> list[Drift]:
    """Compare each seeded budget period's Redis counter with PostgreSQL; log drift and repair under-counts.

    Redis may legitimately be ahead of PostgreSQL (events not drained yet) or
    behind by what is in flight (an event drained before its request settled):
    only a gap beyond both is drift. An under-count (Redis lost a settlement)
    is raised to PostgreSQL's figure — the safe direction for a hard limit; an
    over-count is only logged.
    """
    from billing.enforcement import add_settled_sync

    now = now or timezone.now()
    client = sync_client()
    drifts = []
    for budget in load_limits().all_budgets():
        period = period_containing(budget.period, budget.timezone, now)
        claim = BudgetClaim(budget=budget, period=period, amount=0)
        settled_raw, reserved_raw = client.hmget(claim.key, "s", "r")
        if settled_raw is None:
            continue  # not seeded: the next request seeds it from PostgreSQL
        settled, reserved = int(settled_raw), int(reserved_raw or 0)
        database = usd_to_nano(budget_spend(budget=budget, period=period, now=now))
        tolerance = _tolerance(database)
        behind = database - settled - reserved
        ahead = settled - database
        corrected = False
        if behind > tolerance:
            corrected = add_settled_sync(claim.key, behind) >= 0
        elif ahead <= tolerance or _backlog(client):
            continue
        drift = Drift(
            budget.id, period.start, nano_to_usd(settled), nano_to_usd(database), nano_to_usd(reserved), corrected
        )
        drifts.append(drift)
        logger.warning(
            "budget counter drift: Redis %s USD, PostgreSQL %s USD%s",
            drift.redis_usd,
            drift.database_usd,
            " (raised to PostgreSQL)" if corrected else "",
            extra={
                "budget_id": budget.id,
                "period_start": period.start.isoformat(),
                "in_flight_usd": str(drift.in_flight_usd),
            },
        )
    return drifts


def _backlog(client: object) -> bool:
    """Whether usage records are still waiting in the stream (Redis may be ahead of PostgreSQL)."""
    from billing.usage import STREAM

    return bool(client.xlen(STREAM))  # type: ignore[attr-defined]

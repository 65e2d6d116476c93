"""Usage rollups: one ``UsageRollup`` row per period, tenant, team, key, model, provider and tier.

Hours are UTC hours; days are the *tenant's* calendar days (``period_start`` is
the tenant-local midnight), so daily reports and monthly budgets line up with
the tenant's time zone. Recomputing a period deletes and re-inserts its rows in
one transaction, computed by one ``INSERT … SELECT … GROUP BY`` in PostgreSQL
(no Python loop over events), under an advisory lock so two workers cannot
interleave: recomputation is idempotent.

Which periods are recomputed: every hour that received events since its last
rollup (``RollupDirtyHour``, marked by the drain in the transaction that stores
the events) and every tenant-local day holding such an hour once that day is
over, so a rollup always equals the raw events it covers, however late they
were drained; ``rollups_reconcile`` proves it for any range.

Savings: by cache, the events' ``cost_saved_usd``; by routing, what the same
tokens would have cost on the primary model of the tenant's baseline tier
minus what they cost (upstream-served tier requests only; negative when the
route was pricier; both sides at full input price, so provider prompt caching
is not counted twice); by token reduction, ``tokens_saved`` at the served
model's input price; by provider prompt caching, the events'
``prompt_cache_saved_usd``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from billing.periods import day_bounds, local_date, zone

logger = logging.getLogger(__name__)

HOUR, DAY = "hour", "day"

_SAVED_TOKENS = """
CASE WHEN jsonb_typeof(e.tokens_saved) <> 'object' OR e.tokens_saved = '{{}}'::jsonb THEN 0
     ELSE (SELECT COALESCE(sum(v::numeric), 0) FROM jsonb_each_text(e.tokens_saved) AS j(k, v)
           WHERE v ~ '^[0-9]+(\\.[0-9]+)?$') END
"""

_INSERT = f"""
WITH baseline(tenant_id, input_price, output_price) AS (
    SELECT * FROM unnest(%(b_tenants)s::bigint[], %(b_in)s::numeric[], %(b_out)s::numeric[])
), events AS (
    SELECT e.*, {_SAVED_TOKENS} AS saved_tokens
    FROM billing_usageevent e
    WHERE e.started_at >= %(start)s AND e.started_at < %(end)s {{scope}}
)
INSERT INTO billing_usagerollup (
    granularity, period_start, tenant_id, team_id, api_key_id, model, provider, tier,
    requests, errors, prompt_tokens, completion_tokens, cost_usd, cache_hits,
    saved_by_cache_usd, saved_by_routing_usd, saved_by_reduction_usd, tokens_saved,
    cache_read_tokens, cache_write_tokens, saved_by_prompt_cache_usd, saved_by_semantic_cache_usd
)
SELECT %(granularity)s, %(period_start)s, e.tenant_id, e.team_id, e.api_key_id, e.model, e.provider, e.tier,
    count(*),
    count(*) FILTER (WHERE e.status_code >= 400),
    sum(e.prompt_tokens),
    sum(e.completion_tokens),
    sum(e.cost_usd),
    count(*) FILTER (WHERE e.cache_status IN ('HIT', 'SEMANTIC')),
    sum(e.cost_saved_usd),
    COALESCE(sum(
        (e.prompt_tokens * COALESCE(b.input_price, %(d_in)s::numeric)
         + e.completion_tokens * COALESCE(b.output_price, %(d_out)s::numeric)) / 1000000
        - (e.cost_usd + e.prompt_cache_saved_usd)
    ) FILTER (WHERE e.tier <> '' AND e.status_code < 400 AND e.cache_status NOT IN ('HIT', 'SEMANTIC')), 0),
    COALESCE(sum(e.saved_tokens * m.input_cost_per_million / 1000000), 0),
    sum(e.saved_tokens)::bigint,
    sum(e.cache_read_tokens)::bigint,
    sum(e.cache_write_tokens)::bigint,
    sum(e.prompt_cache_saved_usd),
    COALESCE(sum(e.cost_saved_usd) FILTER (WHERE e.cache_status = 'SEMANTIC'), 0)
FROM events e
LEFT JOIN baseline b ON b.tenant_id = e.tenant_id
LEFT JOIN providers_model m ON m.name = e.model
GROUP BY e.tenant_id, e.team_id, e.api_key_id, e.model, e.provider, e.tier
"""

_DELETE = (
    "DELETE FROM billing_usagerollup WHERE granularity = %(granularity)s AND period_start = %(period_start)s {scope}"
)
_TENANT_SCOPE = "AND ({column} = ANY(%(tenants)s) OR (%(with_null)s AND {column} IS NULL))"


@dataclass(frozen=True, slots=True)
class Baselines:
    """Per-million (input, output) prices of each tenant's baseline tier primary; ``default`` for the rest."""

    by_tenant: dict[int, tuple[Decimal, Decimal]]
    default: tuple[Decimal, Decimal] | None


def load_baselines() -> Baselines:
    """The baseline prices routing savings are measured against (``RoutingPolicy.baseline_tier``)."""
    from gateway_platform.config.snapshot import load_snapshot
    from routing.policies import routing_policy
    from routing.tier_views import tiers_for
    from tenants.models import Tenant

    snapshot = load_snapshot(0)

    def prices(tenant_id: int | None) -> tuple[Decimal, Decimal] | None:
        name = routing_policy(snapshot, tenant_id).baseline_tier
        tier = tiers_for(snapshot, tenant_id).tiers.get(name) if name else None
        if tier is None or not tier.deployments:
            return None
        primary = tier.deployments[0]
        return primary.input_cost_per_million, primary.output_cost_per_million

    default = prices(None)
    by_tenant = {}
    for tenant_id in Tenant.objects.values_list("pk", flat=True):
        own = prices(tenant_id)
        if own is not None and own != default:
            by_tenant[tenant_id] = own
    return Baselines(by_tenant, default)


def _params(granularity: str, start: datetime, end: datetime, baselines: Baselines) -> dict[str, Any]:
    tenants = list(baselines.by_tenant)
    default = baselines.default or (None, None)
    return {
        "granularity": granularity,
        "period_start": start,
        "start": start,
        "end": end,
        "b_tenants": tenants,
        "b_in": [baselines.by_tenant[t][0] for t in tenants],
        "b_out": [baselines.by_tenant[t][1] for t in tenants],
        "d_in": default[0],
        "d_out": default[1],
    }


def _replace(params: dict[str, Any], *, tenants: list[int] | None = None, with_null: bool = True) -> int:
    """Delete and re-insert one period's rows (for ``tenants`` only, if given) in one transaction."""
    scope_delete = scope_insert = ""
    if tenants is not None:
        params = {**params, "tenants": tenants, "with_null": with_null}
        scope_delete = _TENANT_SCOPE.format(column="tenant_id")
        scope_insert = _TENANT_SCOPE.format(column="e.tenant_id")
    with transaction.atomic(), connection.cursor() as cursor:
        lock = f"rollup:{params['granularity']}:{params['period_start']}"
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [lock])
        cursor.execute(_DELETE.format(scope=scope_delete), params)
        cursor.execute(_INSERT.format(scope=scope_insert), params)
        return int(cursor.rowcount)


def rollup_hour(*, hour: datetime, baselines: Baselines | None = None) -> int:
    """Recompute the hour rollups of the UTC hour starting at ``hour``; returns the rows written."""
    start = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    params = _params(HOUR, start, start + timedelta(hours=1), baselines or load_baselines())
    rows = _replace(params)
    logger.info("hour rolled up", extra={"period_start": start.isoformat(), "rows": rows})
    return rows


def timezone_groups() -> dict[str, list[int]]:
    """Tenant ids by effective time zone name (events without a tenant belong to UTC)."""
    from tenants.models import Tenant

    groups: dict[str, list[int]] = defaultdict(list)
    for tenant_id, name in Tenant.objects.values_list("pk", "timezone"):
        groups[str(zone(name))].append(tenant_id)
    groups.setdefault("UTC", [])
    return dict(groups)


def rollup_day(*, day: date, groups: dict[str, list[int]] | None = None, baselines: Baselines | None = None) -> int:
    """Recompute the day rollups of local calendar day ``day`` for every tenant (in its own time zone).

    Only days that are over get day rows (reports read hour rows for the current day).
    """
    baselines = baselines or load_baselines()
    rows = 0
    now = timezone.now()
    for tz_name, tenants in (groups or timezone_groups()).items():
        start, end = day_bounds(day, tz_name)
        if end > now:
            continue
        rows += _replace(_params(DAY, start, end, baselines), tenants=tenants, with_null=tz_name == "UTC")
    logger.info("day rolled up", extra={"day": day.isoformat(), "rows": rows})
    return rows


def rollup_range(*, start: datetime, end: datetime) -> int:
    """Recompute every hour and every tenant-local day touching ``[start, end)`` (backfills, late events)."""
    baselines = load_baselines()
    groups = timezone_groups()
    rows = 0
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        rows += rollup_hour(hour=hour, baselines=baselines)
        hour += timedelta(hours=1)
    first = min(local_date(start, tz) for tz in groups)
    last = max(local_date(end - timedelta(microseconds=1), tz) for tz in groups)
    day = first
    while day <= last:
        rows += rollup_day(day=day, groups=groups, baselines=baselines)
        day += timedelta(days=1)
    return rows


def rollup_recent(*, now: datetime) -> int:
    """The current UTC hour, and the previous one during the first minutes of an hour (late drains)."""
    baselines = load_baselines()
    rows = rollup_hour(hour=now, baselines=baselines)
    if now.minute < 5:
        rows += rollup_hour(hour=now - timedelta(hours=1), baselines=baselines)
    return rows


def rollup_days_due(*, now: datetime, close_hours: int = 6) -> int:
    """Close each tenant's local yesterday during its first hours after local midnight (beat: hourly).

    Run hourly, a day is written ``close_hours`` times (idempotent), so a missed
    beat or a late drain does not leave it wrong. Day rows exist only for days
    that are over: reports read hour rows for the current day.
    """
    baselines = None
    rows = 0
    for tz_name, tenants in timezone_groups().items():
        local_now = now.astimezone(zone(tz_name))
        if local_now.hour < close_hours:
            baselines = baselines or load_baselines()
            yesterday = local_now.date() - timedelta(days=1)
            rows += rollup_day(day=yesterday, groups={tz_name: tenants}, baselines=baselines)
    return rows


DIRTY_BATCH = 48


def rollup_dirty(*, limit: int = 24 * 31) -> int:
    """Recompute every hour marked dirty by the drain, and the finished local days holding them.

    Each batch of hours is recomputed and unmarked in one transaction (rows locked
    ``SKIP LOCKED``, so workers share the work); a drain that marks an hour again
    meanwhile waits for that transaction and leaves the hour marked for the next run.
    """
    from billing.models import RollupDirtyHour

    baselines: Baselines | None = None
    groups: dict[str, list[int]] | None = None
    rows = done = 0
    while done < limit:
        with transaction.atomic():
            hours = list(
                RollupDirtyHour.objects.select_for_update(skip_locked=True)
                .order_by("hour")
                .values_list("hour", flat=True)[:DIRTY_BATCH]
            )
            if not hours:
                break
            baselines = baselines or load_baselines()
            groups = groups or timezone_groups()
            days: set[tuple[str, date]] = set()
            for hour in hours:
                rows += rollup_hour(hour=hour, baselines=baselines)
                for tz_name in groups:
                    days.add((tz_name, local_date(hour, tz_name)))
                    days.add((tz_name, local_date(hour + timedelta(minutes=59, seconds=59), tz_name)))
            for tz_name, day in sorted(days):
                rows += rollup_day(day=day, groups={tz_name: groups[tz_name]}, baselines=baselines)
            RollupDirtyHour.objects.filter(hour__in=hours).delete()
            done += len(hours)
    return rows


@dataclass(frozen=True, slots=True)
class Mismatch:
    """An hour whose hour rollups do not add up to its raw events."""

    hour: datetime
    events: int
    rolled_up: int
    event_cost: Decimal
    rolled_up_cost: Decimal


def rollups_reconcile(*, start: datetime, end: datetime) -> list[Mismatch]:
    """Compare each UTC hour's raw events with its hour rollups (requests and cost); the hours that differ."""
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncHour

    from billing.models import UsageEvent, UsageRollup

    raw = {
        row["hour"]: (row["n"], row["cost"] or Decimal(0))
        for row in UsageEvent.objects.filter(started_at__gte=start, started_at__lt=end)
        .annotate(hour=TruncHour("started_at", tzinfo=UTC))
        .values("hour")
        .annotate(n=Count("id"), cost=Sum("cost_usd"))
    }
    rolled = {
        row["period_start"]: (row["n"] or 0, row["cost"] or Decimal(0))
        for row in UsageRollup.objects.filter(granularity=HOUR, period_start__gte=start, period_start__lt=end)
        .values("period_start")
        .annotate(n=Sum("requests"), cost=Sum("cost_usd"))
    }
    mismatches = []
    for hour in sorted(set(raw) | set(rolled)):
        events, cost = raw.get(hour, (0, Decimal(0)))
        count, rolled_cost = rolled.get(hour, (0, Decimal(0)))
        if events != count or cost != rolled_cost:
            mismatches.append(Mismatch(hour, events, count, cost, rolled_cost))
    return mismatches

"""Cache statistics per tenant and day (``CacheStat``), computed from usage events.

Every chat request's ``UsageEvent`` carries its ``cache_status`` (HIT,
SEMANTIC, MISS, BYPASS), the upstream cost a hit avoided (``cost_saved_usd``)
and the tokens it avoided (``tokens_saved['cache_prompt']`` and
``['cache_completion']``). ``rollup`` recomputes whole UTC days, so it is
idempotent; the reports read ``CacheStat``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from caching.models import CacheStat

DAY_SQL = """
    SELECT tenant_id,
           count(*) FILTER (WHERE cache_status = 'HIT'),
           count(*) FILTER (WHERE cache_status = 'SEMANTIC'),
           count(*) FILTER (WHERE cache_status = 'MISS'),
           count(*) FILTER (WHERE cache_status = 'BYPASS'),
           coalesce(sum(coalesce((tokens_saved->>'cache_prompt')::bigint, 0)
                        + coalesce((tokens_saved->>'cache_completion')::bigint, 0))
                    FILTER (WHERE cache_status IN ('HIT', 'SEMANTIC')), 0),
           coalesce(sum(cost_saved_usd) FILTER (WHERE cache_status IN ('HIT', 'SEMANTIC')), 0)
    FROM billing_usageevent
    WHERE started_at >= %s AND started_at < %s AND endpoint IN ('chat.completions', 'messages')
    GROUP BY tenant_id
"""


def rollup_day(day: date) -> int:
    """Recompute ``CacheStat`` rows for one UTC day; the number of tenants written."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(DAY_SQL, (start, start + timedelta(days=1)))
        rows = cursor.fetchall()
    stats = [
        CacheStat(
            tenant_id=tenant_id,
            day=day,
            exact_hits=exact,
            semantic_hits=semantic,
            misses=misses,
            bypasses=bypasses,
            tokens_saved=tokens,
            cost_saved_usd=Decimal(cost),
        )
        for tenant_id, exact, semantic, misses, bypasses, tokens, cost in rows
    ]
    with transaction.atomic():
        CacheStat.objects.filter(day=day).delete()
        CacheStat.objects.bulk_create(stats)
    return len(stats)


def rollup(days: int = 2, today: date | None = None) -> int:
    """Recompute the last ``days`` UTC days (today included)."""
    today = today or timezone.now().astimezone(UTC).date()
    return sum(rollup_day(today - timedelta(days=offset)) for offset in range(days))

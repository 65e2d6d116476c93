"""Eviction: expired entries first, then the least recently hit beyond each tenant's maximum.

Runs in Celery (``caching.tasks.evict_cache_entries``); the exact-layer keys of
evicted rows are deleted from Redis too, so both layers hold the same entries.
Hit counts kept in Redis are written to the rows first, so "recently hit" is
current.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count

from caching import entry_queue
from caching.models import CacheEntry
from caching.policy import load_cache_policies
from caching.store import flush_hits
from gateway_platform.redis_clients import sync_client

logger = logging.getLogger(__name__)

BATCH = 5000
EXPIRED_SQL = """
    DELETE FROM caching_cacheentry WHERE id IN (
        SELECT id FROM caching_cacheentry WHERE expires_at <= now() LIMIT %s
    ) RETURNING exact_key
"""
# Keep the ``limit`` most recently hit (or created) entries of one tenant; delete the rest.
OVER_LIMIT_SQL = """
    DELETE FROM caching_cacheentry WHERE id IN (
        SELECT id FROM (
            SELECT id, row_number() OVER (
                ORDER BY greatest(created_at, coalesce(last_hit_at, created_at)) DESC, id DESC
            ) AS rank
            FROM caching_cacheentry WHERE tenant_id = %s
        ) AS ranked WHERE rank > %s
    ) RETURNING exact_key
"""


@dataclass(frozen=True, slots=True)
class Eviction:
    hits_flushed: int
    expired: int
    over_limit: int


def _delete(sql: str, params: tuple[int, ...]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def forget_exact(keys: list[str]) -> None:
    client = sync_client()
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def evict_entries() -> Eviction:
    """One eviction pass over every tenant."""
    entry_queue.drain()  # queued answers get their rows first: their hits land, they count against limits
    flushed = flush_hits()
    expired = 0
    while keys := _delete(EXPIRED_SQL, (BATCH,)):
        forget_exact(keys)
        expired += len(keys)
        if len(keys) < BATCH:
            break
    policies = load_cache_policies()
    over_limit = 0
    for row in CacheEntry.objects.values("tenant_id").annotate(entries=Count("id")).order_by():
        tenant_id = row["tenant_id"]
        limit = policies.by_tenant.get(tenant_id, policies.default).max_entries
        if row["entries"] > limit:
            keys = _delete(OVER_LIMIT_SQL, (tenant_id, limit))
            forget_exact(keys)
            over_limit += len(keys)
    if expired or over_limit:
        logger.info("cache entries evicted", extra={"expired": expired, "over_limit": over_limit})
    return Eviction(hits_flushed=flushed, expired=expired, over_limit=over_limit)

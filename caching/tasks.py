"""Celery tasks of the response cache (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from celery import shared_task

from caching import entry_queue, eviction, stats


@shared_task(ignore_result=True)
def drain_cache_entries() -> int:
    """Insert the answers the serving processes queued as cache entries."""
    return entry_queue.drain()


@shared_task(ignore_result=True)
def evict_cache_entries() -> dict[str, int]:
    """Expired entries, then the least recently hit beyond each tenant's maximum."""
    done = eviction.evict_entries()
    return {"hits_flushed": done.hits_flushed, "expired": done.expired, "over_limit": done.over_limit}


@shared_task(ignore_result=True)
def rollup_cache_stats() -> int:
    """Recompute today's and yesterday's cache statistics per tenant."""
    return stats.rollup()

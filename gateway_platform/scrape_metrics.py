"""Metrics computed when ``/metrics`` is scraped, from the shared state in Redis.

Counters incremented inside Celery workers are invisible to a web process on another
host (prometheus_client aggregates only the processes sharing one directory), so the
numbers operators alert on for the usage pipeline and budgets are read from Redis —
where they are shared anyway — at scrape time instead:

- ``gateway_usage_stream_length`` / ``gateway_usage_drain_lag_seconds``: records
  waiting in the usage stream and the age of the oldest (drained records are deleted,
  so the first entry is the oldest one not yet stored in PostgreSQL);
- ``gateway_usage_dead_letters``: records on the dead-letter stream (refused on their
  own, waiting for an operator);
- ``gateway_usage_spool_records``: records in this node's local spool (written while
  Redis was down; the node's drainer replays them);
- ``gateway_budget_used_ratio``: (settled + reserved) / amount of each budget's current
  period that has a live counter.

This module is used by the ``/metrics`` view only (an interface, like ``urls.py``); no
app imports it. Every read fails soft: a Redis or database error leaves the family out
and is counted in ``gateway_scrape_errors``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from billing import deadletter, usage
from billing.budgets import budget_key, nano_to_usd
from billing.limits import load_limits
from billing.periods import period_containing
from gateway_platform.redis_clients import sync_client

logger = logging.getLogger(__name__)

# Read at most this many budgets per scrape (one pipelined round trip).
MAX_BUDGETS = 5000
# Label names of the families below (the dashboard and alert rules are checked against them).
LABELS: dict[str, tuple[str, ...]] = {
    "gateway_usage_stream_length": (),
    "gateway_usage_drain_lag_seconds": (),
    "gateway_usage_dead_letters": (),
    "gateway_usage_spool_records": (),
    "gateway_budget_used_ratio": ("budget", "scope", "name", "action"),
    "gateway_scrape_errors": ("family",),
}


def _stream_id_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class RedisStateCollector(Collector):
    """The usage pipeline and budget families, read from Redis on each scrape."""

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "gateway_scrape_errors",
            "Metric families left out of this scrape because a read failed.",
            labels=list(LABELS["gateway_scrape_errors"]),
        )
        try:
            yield from self._usage()
        except Exception:
            logger.warning("usage stream metrics unavailable", exc_info=True)
            errors.add_metric(["usage"], 1)
        try:
            yield from self._budgets()
        except Exception:
            logger.warning("budget metrics unavailable", exc_info=True)
            errors.add_metric(["budgets"], 1)
        yield errors

    def _usage(self) -> Iterator[Metric]:
        client = sync_client()
        pipe = client.pipeline(transaction=False)
        pipe.xlen(usage.STREAM)
        pipe.xrange(usage.STREAM, count=1)
        pipe.xlen(deadletter.DEAD_STREAM)
        length, first, dead = pipe.execute()
        lag = 0.0
        if first:
            lag = max(0.0, time.time() - _stream_id_ms(first[0][0]) / 1000)
        yield GaugeMetricFamily(
            "gateway_usage_stream_length", "Usage records queued in Redis, not yet stored.", value=length
        )
        yield GaugeMetricFamily(
            "gateway_usage_drain_lag_seconds",
            "Age of the oldest usage record not yet stored in PostgreSQL (0 when none waits).",
            value=lag,
        )
        yield GaugeMetricFamily(
            "gateway_usage_dead_letters",
            "Usage records on the dead-letter stream, waiting for an operator.",
            value=dead,
        )
        yield GaugeMetricFamily(
            "gateway_usage_spool_records",
            "Usage records in this node's local spool (Redis was down), waiting for its drainer.",
            value=usage.spool_depth(),
        )

    def _budgets(self) -> Iterator[Metric]:
        limits = load_limits()
        groups = (limits.budgets_by_key, limits.budgets_by_team, limits.budgets_by_tenant)
        budgets = [b for group in groups for items in group.values() for b in items][:MAX_BUDGETS]
        now = timezone.now()
        keys = [budget_key(b.id, period_containing(b.period, b.timezone, now)) for b in budgets]
        pipe = sync_client().pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, "s", "r")
        family = GaugeMetricFamily(
            "gateway_budget_used_ratio",
            "Spent plus reserved over the amount of each budget's current period (1 = exhausted).",
            labels=list(LABELS["gateway_budget_used_ratio"]),
        )
        for budget, (settled, reserved) in zip(budgets, pipe.execute(), strict=True):
            if settled is None or not budget.amount_usd:
                continue  # no live counter this period yet: nothing was spent through this gateway
            used = nano_to_usd(int(settled) + int(reserved or 0))
            family.add_metric(
                [str(budget.id), budget.scope, budget.label, budget.action], float(used / budget.amount_usd)
            )
        yield family


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(RedisStateCollector())

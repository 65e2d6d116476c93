"""Celery tasks of the billing app (interfaces: each makes one domain call)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from billing import alerts, inflight, retention, rollups, spend, usage


@shared_task(ignore_result=True)
def drain_usage_events() -> int:
    """Write queued usage records to PostgreSQL (beat runs it every second)."""
    return usage.drain()


@shared_task(ignore_result=True)
def rollup_current_hour() -> int:
    """Recompute every hour (and finished local day) that received events since its rollup (beat: every minute)."""
    return rollups.rollup_dirty()


@shared_task(ignore_result=True)
def rollup_days() -> int:
    """Close each tenant's local yesterday in the hours after its midnight (beat: hourly)."""
    return rollups.rollup_days_due(now=timezone.now())


@shared_task(ignore_result=True)
def prune_usage_events() -> int:
    """Delete raw usage events past ``GATEWAY_USAGE_RETENTION_DAYS``, rollups first (beat: nightly)."""
    return retention.usage_prune(now=timezone.now())


@shared_task(ignore_result=True)
def check_budget_alerts() -> int:
    """Record crossed soft thresholds and enqueue their deliveries (beat: every 30 s)."""
    return len(alerts.budget_alerts_check(now=timezone.now()))


@shared_task(ignore_result=True)
def reconcile_budgets() -> int:
    """Compare Redis budget counters with PostgreSQL; log drift (beat: every 5 minutes)."""
    return len(spend.budgets_reconcile(now=timezone.now()))


@shared_task(ignore_result=True)
def deliver_budget_alert(delivery_id: int) -> str | None:
    """Send one budget alert delivery now (the fast path; retries come from ``retry_budget_alerts``)."""
    return alerts.alert_delivery_attempt(delivery_id=delivery_id, now=timezone.now())


@shared_task(ignore_result=True)
def retry_budget_alerts() -> int:
    """Send pending budget alert deliveries that are due, with backoff (beat: every 30 s)."""
    return alerts.alert_deliveries_retry(now=timezone.now())


@shared_task(ignore_result=True)
def reap_in_flight() -> int:
    """Bill by estimate the requests in flight on gateway processes that died (beat: every 15 s)."""
    return len(inflight.reap().billed)

"""Celery tasks of the billing app."""

from __future__ import annotations

from celery import shared_task

from billing import usage


@shared_task(ignore_result=True)
def drain_usage_events() -> int:
    """Write queued usage records to PostgreSQL (beat runs it every second)."""
    return usage.drain()

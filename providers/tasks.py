"""Celery tasks of the providers app: health probes and the worker heartbeat."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from redis.exceptions import RedisError

from gateway_platform.health import write_celery_heartbeat
from providers import probes

logger = logging.getLogger(__name__)

# The heartbeat outlives three missed runs of the task that wrote it.
HEARTBEAT_MISSES = 3


@shared_task(ignore_result=True)
def probe_providers() -> dict[str, str]:
    """Probe every enabled provider (beat: every ``GATEWAY_HEALTH_PROBE_SECONDS``); name → status."""
    try:
        write_celery_heartbeat(HEARTBEAT_MISSES * settings.GATEWAY_HEALTH_PROBE_SECONDS)
    except RedisError:
        logger.warning("celery heartbeat not written: Redis unavailable")  # still probe and store results
    return {result.provider: result.status for result in probes.probe_all()}


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Mark a worker alive for ``/health`` (beat: every ``GATEWAY_CELERY_HEARTBEAT_SECONDS``)."""
    write_celery_heartbeat(HEARTBEAT_MISSES * settings.GATEWAY_CELERY_HEARTBEAT_SECONDS)

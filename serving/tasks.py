"""Celery tasks of the request path."""

from __future__ import annotations

import logging

from celery import shared_task

from serving.responses.store import prune_expired

logger = logging.getLogger(__name__)


@shared_task
def prune_stored_responses() -> int:
    """Delete stored Responses past their expiry (beat, hourly)."""
    deleted = prune_expired()
    if deleted:
        logger.info("expired stored responses deleted", extra={"deleted": deleted})
    return deleted

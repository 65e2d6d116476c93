"""The configuration version stamp in Redis.

Every save or delete of a configuration model (keys, tenants, tiers, models,
providers, policies) increments one Redis counter after the transaction
commits. Each gateway process compares its snapshot's version with that
counter on every request and reloads when it moved, so admin edits reach all
processes at once and a revoked key is refused on the very next request.

The bump runs in the saving transaction's ``on_commit`` with retries; should
Redis miss it anyway, cached keys expire after ``GATEWAY_KEY_CACHE_MAX_AGE_SECONDS``
(``gateway_platform.config.snapshot.ConfigCache``): a revocation or suspension
is then late by at most that bound, never lost.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from gateway_platform.redis_clients import async_client, sync_client

logger = logging.getLogger(__name__)

VERSION_KEY = "gateway:config:version"


# Waits between attempts to bump (the admin save waits at most their sum when Redis is down).
RETRY_DELAYS = (0.05, 0.2, 0.5)


def bump() -> bool:
    """Mark the configuration as changed, for every process; retried, never raises.

    If every attempt fails, processes still re-read keys after ``GATEWAY_KEY_CACHE_MAX_AGE_SECONDS``
    (``ConfigCache``), so a revocation is late by at most that bound, never lost.
    """
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            sync_client().incr(VERSION_KEY)
            return True
        except Exception:  # the admin save must not fail because Redis blinked
            if delay is None:
                logger.exception("could not bump the configuration version", extra={"attempts": attempt + 1})
                return False
            time.sleep(delay)
    return False


def _on_change(sender: type, **kwargs: Any) -> None:
    transaction.on_commit(bump)


def watch(*model_labels: str) -> None:
    """Bump the version whenever one of these models changes."""
    for label in model_labels:
        model = apps.get_model(label)
        uid = f"config_version:{label}"
        post_save.connect(_on_change, sender=model, dispatch_uid=uid + ":save")
        post_delete.connect(_on_change, sender=model, dispatch_uid=uid + ":delete")
        for field in model._meta.many_to_many:
            m2m_changed.connect(_on_change, sender=field.remote_field.through, dispatch_uid=uid + field.name)


async def current() -> int:
    """The version other processes agree on (0 before the first change)."""
    value = await async_client().get(VERSION_KEY)
    return int(value or 0)

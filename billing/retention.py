"""Dropping raw usage events older than ``GATEWAY_USAGE_RETENTION_DAYS`` (rollups are kept forever).

Before any event goes, every hour and tenant-local day that holds events to
be deleted is rolled up again, and the retention mark moves: from then on
budget seeding reads those days from rollups (``billing.spend``). Deletion runs
in small batches over the ``started_at`` index, each its own transaction, so
the table is never locked for long.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min

from billing.models import UsageEvent, UsageRetentionMark
from billing.rollups import rollup_range

logger = logging.getLogger(__name__)

_DELETE_BATCH = """
DELETE FROM billing_usageevent WHERE id IN (
    SELECT id FROM billing_usageevent WHERE started_at < %s ORDER BY started_at LIMIT %s
)
"""


def retention_mark() -> datetime | None:
    """Raw events before this instant may be gone (None: nothing was ever pruned)."""
    mark = UsageRetentionMark.objects.order_by("pk").first()
    return mark.pruned_before if mark else None


@transaction.atomic
def _move_mark(cutoff: datetime) -> None:
    mark = UsageRetentionMark.objects.select_for_update().order_by("pk").first()
    if mark is None:
        UsageRetentionMark.objects.create(pruned_before=cutoff)
    elif mark.pruned_before < cutoff:
        mark.pruned_before = cutoff
        mark.save(update_fields=["pruned_before", "updated_at"])


def usage_prune(*, now: datetime, batch_size: int = 10_000) -> int:
    """Roll up, then delete raw events older than the retention period; returns how many were deleted."""
    days = settings.GATEWAY["USAGE_RETENTION_DAYS"]
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    oldest = UsageEvent.objects.filter(started_at__lt=cutoff).aggregate(oldest=Min("started_at"))["oldest"]
    if oldest is None:
        return 0
    rollup_range(start=oldest, end=cutoff)
    _move_mark(cutoff)
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_DELETE_BATCH, [cutoff, batch_size])
            count = cursor.rowcount
        deleted += count
        if count < batch_size:
            break
    logger.info("old usage events deleted", extra={"before": cutoff.isoformat(), "deleted": deleted})
    return deleted

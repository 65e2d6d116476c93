"""Late usage events reach their hour and day rollups; a reconciliation proves rollups equal raw events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from billing import rollups, tasks, usage
from billing.models import RollupDirtyHour, UsageRollup
from billing.periods import local_date
from tests.factories import make_key

pytestmark = pytest.mark.django_db(transaction=True)


def queue_event(key, started_at: datetime, cost: str) -> None:
    record = usage.UsageRecord(
        request_id=uuid.uuid4().hex,
        endpoint="chat.completions",
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=2),
        status_code=200,
        tenant_id=key.team.tenant_id,
        team_id=key.team_id,
        api_key_id=key.pk,
        model="late-model",
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd=Decimal(cost),
    )
    asyncio.run(usage.record(record))


def test_events_drained_late_reach_their_hours_and_days():
    key, _ = make_key()
    now = timezone.now()
    three_hours_ago = now - timedelta(hours=3)
    three_days_ago = now - timedelta(days=3)
    events = ((three_hours_ago, "0.25"), (three_days_ago, "0.5"), (now, "0.125"))
    for when, cost in events:
        queue_event(key, when, cost)
    usage.drain()
    assert RollupDirtyHour.objects.count() >= 3
    tasks.rollup_current_hour()  # the beat task

    start, end = now - timedelta(days=4), now + timedelta(hours=1)
    assert rollups.rollups_reconcile(start=start, end=end) == []
    hour = three_hours_ago.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    late_hour = UsageRollup.objects.filter(granularity="hour", period_start=hour, api_key_id=key.pk)
    assert late_hour.aggregate(c=Sum("cost_usd"))["c"] == Decimal("0.25")
    tz = key.team.tenant.timezone
    today = local_date(now, tz)
    finished = sum((Decimal(cost) for when, cost in events if local_date(when, tz) < today), Decimal(0))
    day_rows = UsageRollup.objects.filter(granularity="day", api_key_id=key.pk)
    assert day_rows.aggregate(c=Sum("cost_usd"))["c"] == finished  # only finished days get day rows
    assert not RollupDirtyHour.objects.exists()


def test_reconciliation_reports_an_hour_whose_rollups_differ():
    key, _ = make_key()
    when = timezone.now() - timedelta(hours=30)
    queue_event(key, when, "1.5")
    usage.drain()
    tasks.rollup_current_hour()
    day = when.astimezone(UTC).date()
    call_command("reconcile_rollups", "--from", day.isoformat(), "--to", (day + timedelta(days=1)).isoformat())
    hour = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    UsageRollup.objects.filter(granularity="hour", period_start=hour).delete()  # a rollup gone wrong
    [mismatch] = rollups.rollups_reconcile(start=hour, end=hour + timedelta(hours=1))
    assert (mismatch.events, mismatch.rolled_up, mismatch.event_cost) == (1, 0, Decimal("1.5"))
    with pytest.raises(CommandError):
        call_command("reconcile_rollups", "--from", day.isoformat())

"""Budget periods: calendar boundaries in a tenant's time zone (pure functions).

A daily period starts at local midnight, a weekly one at local midnight on
Monday (ISO weeks), a monthly one at local midnight on the 1st; a total
period never resets. Boundaries are computed on the local calendar and then
converted to UTC, so DST changes give 23- or 25-hour days, and a half-hour
offset (Asia/Kolkata) gives a period starting at hh:30 UTC.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

logger = logging.getLogger(__name__)

DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
TOTAL = "total"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """One budget period: ``[start, end)``; ``end`` is None for a total budget."""

    start: datetime
    end: datetime | None

    @property
    def stamp(self) -> int:
        """The period's start as Unix seconds (part of the Redis key names)."""
        return int(self.start.timestamp())


@functools.lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; UTC (with a warning) for an unknown name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r; using UTC", name)
        return ZoneInfo("UTC")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant of local midnight starting ``day`` (the first instant of the day after a DST gap)."""
    naive = datetime(day.year, day.month, day.day)
    instant = naive.replace(tzinfo=tz).astimezone(UTC)
    # A midnight that falls in a DST gap does not exist; zoneinfo maps it past the gap.
    return instant


def _month_after(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def period_containing(period: str, tz_name: str, now: datetime) -> Period:
    """The period of kind ``period`` that contains the instant ``now`` (aware), in time zone ``tz_name``."""
    if period == TOTAL:
        return Period(EPOCH, None)
    tz = zone(tz_name)
    today = now.astimezone(tz).date()
    if period == DAILY:
        first, following = today, today + timedelta(days=1)
    elif period == WEEKLY:
        first = today - timedelta(days=today.weekday())
        following = first + timedelta(days=7)
    elif period == MONTHLY:
        first = today.replace(day=1)
        following = _month_after(first)
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return Period(local_midnight(first, tz), local_midnight(following, tz))


def day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` of the local calendar day ``day`` in ``tz_name``."""
    tz = zone(tz_name)
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def local_date(instant: datetime, tz_name: str) -> date:
    """The calendar date of ``instant`` in ``tz_name``."""
    return instant.astimezone(zone(tz_name)).date()

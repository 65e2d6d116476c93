"""Report periods: local calendar ranges, and which rollup rows cover them exactly.

Reports are asked for in local dates of a tenant's time zone; rollups are stored per UTC
instant, as hour rows (always written, also for the current hour) and day rows (written when a
day is closed; ``billing.rollups`` starts them at the tenant's local midnight). For a range,
:func:`covering_rollups` returns one queryset that counts every hour exactly once: the day rows
of the closed days inside the range, and the hour rows of every stretch no day row covers (days
not closed yet, ragged edges). Which days are closed is probed per tenant and candidate day
(:func:`closed_days`); UTC-aligned day rows (a tenant that changed time zone) are found too.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Q, QuerySet

from billing.models import UsageRollup
from billing.periods import local_midnight, zone

__all__ = ["DateRange", "closed_days", "covering_rollups", "gaps", "local_midnight", "month_range", "zone"]

DAY = timedelta(days=1)
# Up to this length a range is read from hour rows only: cheap enough, and no stitching needed.
HOURLY_MAX = timedelta(days=2)
G = UsageRollup.Granularity


@dataclass(frozen=True)
class DateRange:
    """Inclusive local dates ``first``..``last`` in ``tz``; ``start``/``end`` are the half-open instants."""

    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return local_midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        return local_midnight(self.last + DAY, self.tz)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def clipped_end(self, now: datetime) -> datetime:
        """The range's end, or ``now`` if the range reaches into the future."""
        return min(self.end, max(now, self.start))


def month_range(year: int, month: int, tz: ZoneInfo) -> DateRange:
    """The whole calendar month."""
    return DateRange(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]), tz)


def month_to_date(today: date, tz: ZoneInfo) -> DateRange:
    """The first of ``today``'s month through ``today``: the reports' default range."""
    return DateRange(today.replace(day=1), today, tz)


def _merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def gaps(
    start: datetime, end: datetime, covered: Iterable[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The parts of ``[start, end)`` not covered by the ``covered`` intervals."""
    result: list[tuple[datetime, datetime]] = []
    cursor = start
    for lo, hi in _merge(covered):
        if lo > cursor:
            result.append((cursor, min(lo, end)))
        cursor = max(cursor, hi)
        if cursor >= end:
            break
    if cursor < end:
        result.append((cursor, end))
    return [(lo, hi) for lo, hi in result if lo < hi]


def _hour_rows(span: list[tuple[datetime, datetime]]) -> Q:
    q = Q(pk__in=[])  # matches nothing; OR-ed with the spans below
    for lo, hi in span:
        q |= Q(period_start__gte=lo, period_start__lt=hi)
    return Q(granularity=G.HOUR) & q


# Candidate days are sent once per time zone and joined to that zone's tenants in SQL, and each
# hit comes back as the candidate's index: few values to send and to parse, whatever the tenants.
_PROBE = """
SELECT t.tenant_id, c.idx
FROM unnest(%s::bigint[], %s::int[]) AS t(tenant_id, grp)
JOIN unnest(%s::timestamptz[], %s::int[]) WITH ORDINALITY AS c(day, grp, idx) USING (grp)
WHERE EXISTS (
    SELECT 1 FROM {table} r WHERE r.granularity = 'day' AND r.tenant_id = t.tenant_id AND r.period_start = c.day
)
"""


def _candidates(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Days a day row could cover inside ``[start, end)``: local days, and UTC days where they differ."""
    days = []
    zones_: tuple[ZoneInfo, ...] = (tz, ZoneInfo("UTC")) if tz.key != "UTC" else (tz,)
    for zone_ in zones_:
        day = start.astimezone(zone_).date()
        while (lo := local_midnight(day, zone_)) < end:
            hi = local_midnight(day + DAY, zone_)
            if lo >= start and hi <= end:
                days.append((lo, hi))
            day += DAY
    return sorted(days)


def closed_days(
    zones: dict[int, ZoneInfo], start: datetime, end: datetime
) -> dict[int, list[tuple[datetime, datetime]]]:
    """Per tenant, the days inside ``[start, end)`` that have day rows: one query of index probes.

    Probing each candidate day (``EXISTS`` on the ``(granularity, tenant, period_start)`` index)
    costs the same however many rows a day has. Overlapping candidates (a tenant that changed
    time zone) are skipped, so no hour is counted twice; the hour rows cover them instead.
    """
    by_zone: dict[str, list[int]] = defaultdict(list)
    for tenant_id, tz in zones.items():
        by_zone[tz.key].append(tenant_id)
    tenant_ids, tenant_groups, starts, start_groups = [], [], [], []
    flat: list[tuple[datetime, datetime]] = []  # candidate by 1-based ordinal - 1
    for group, ids in enumerate(by_zone.values()):
        tenant_ids += ids
        tenant_groups += [group] * len(ids)
        for day in _candidates(zones[ids[0]], start, end):
            flat.append(day)
            starts.append(day[0])
            start_groups.append(group)
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(UsageRollup._meta.db_table)
        cursor.execute(_PROBE.format(table=table), [tenant_ids, tenant_groups, starts, start_groups])
        found: dict[int, set[int]] = defaultdict(set)
        for tenant_id, ordinal in cursor.fetchall():
            found[tenant_id].add(ordinal - 1)
    closed: dict[int, list[tuple[datetime, datetime]]] = {}
    for tenant_id, hits in found.items():
        chosen: list[tuple[datetime, datetime]] = []
        for lo, hi in sorted(flat[i] for i in hits):
            if not chosen or lo >= chosen[-1][1]:
                chosen.append((lo, hi))
        closed[tenant_id] = chosen
    return closed


def covering_rollups(
    rollups: QuerySet[UsageRollup], zones: dict[int, ZoneInfo], start: datetime, end: datetime
) -> QuerySet[UsageRollup]:
    """Rollup rows of the tenants in ``zones`` (id -> time zone) that count each hour of ``[start, end)`` once.

    Costs one query (:func:`closed_days`) for ranges over two days.
    """
    scoped = rollups.filter(tenant_id__in=list(zones))
    if end - start <= HOURLY_MAX:
        return scoped.filter(_hour_rows([(start, end)]))
    per_tenant = closed_days(zones, start, end)
    # Tenants whose closed days coincide (the usual case) share one condition.
    groups: dict[tuple[tuple[datetime, datetime], ...], list[int]] = defaultdict(list)
    for tenant_id, closed in per_tenant.items():
        groups[tuple(closed)].append(tenant_id)
    condition = Q(pk__in=[])
    for shared, ids in groups.items():
        day_rows = Q(granularity=G.DAY, period_start__in=[lo for lo, _ in shared])
        condition |= Q(tenant_id__in=ids) & (day_rows | _hour_rows(gaps(start, end, shared)))
    # Tenants without any closed day in range: hour rows only. (Named positively: a negated
    # condition would make PostgreSQL read every hour row of the other tenants, then drop them.)
    open_only = [tenant_id for tenant_id in zones if tenant_id not in per_tenant]
    if open_only:
        condition |= Q(tenant_id__in=open_only) & _hour_rows([(start, end)])
    return scoped.filter(condition)

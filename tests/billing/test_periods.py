"""Budget periods reset at calendar boundaries in the tenant's time zone (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from billing.periods import EPOCH, day_bounds, local_date, period_containing


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_it_resets_a_monthly_budget_at_local_midnight_across_a_month_boundary():
    # 2026-11-30 23:30 in New York is already 2026-12-01 04:30 UTC: still November there.
    before = period_containing("monthly", "America/New_York", utc(2026, 12, 1, 4, 30))
    assert before.start == utc(2026, 11, 1, 4)  # EDT (-4) on Nov 1, DST ends that night
    assert before.end == utc(2026, 12, 1, 5)  # EST (-5)
    after = period_containing("monthly", "America/New_York", utc(2026, 12, 1, 5, 0))
    assert after.start == before.end
    assert after.end == utc(2027, 1, 1, 5)


def test_it_counts_a_month_east_of_utc_from_the_previous_utc_day():
    # 00:30 on Dec 1 in Tokyo is 15:30 UTC on Nov 30: the December period has begun.
    period = period_containing("monthly", "Asia/Tokyo", utc(2026, 11, 30, 15, 30))
    assert period.start == utc(2026, 11, 30, 15)
    assert period.end == utc(2026, 12, 31, 15)


def test_it_handles_half_hour_offsets_and_year_ends():
    period = period_containing("monthly", "Asia/Kolkata", utc(2026, 12, 31, 18, 29))
    assert period.start == utc(2026, 11, 30, 18, 30)
    assert period.end == utc(2026, 12, 31, 18, 30)
    assert period_containing("monthly", "Asia/Kolkata", utc(2026, 12, 31, 18, 30)).start == period.end


def test_it_gives_dst_days_their_real_length():
    spring = period_containing("daily", "Europe/Berlin", utc(2026, 3, 29, 12))
    autumn = period_containing("daily", "Europe/Berlin", utc(2026, 10, 25, 12))
    assert spring.end - spring.start == timedelta(hours=23)
    assert autumn.end - autumn.start == timedelta(hours=25)


def test_a_week_starts_on_monday_local_time():
    # Sunday 2026-11-29 23:00 UTC is Monday 00:00 in Berlin (CET, +1).
    period = period_containing("weekly", "Europe/Berlin", utc(2026, 11, 29, 23, 0))
    assert period.start == utc(2026, 11, 29, 23)
    assert period.end == utc(2026, 12, 6, 23)
    assert period_containing("weekly", "Europe/Berlin", utc(2026, 11, 29, 22, 59)).end == period.start


def test_a_midnight_inside_a_dst_gap_starts_the_day_after_the_gap():
    # Santiago springs forward at 00:00 on 2026-09-06: the day starts at 01:00 local (04:00 UTC).
    period = period_containing("daily", "America/Santiago", utc(2026, 9, 6, 12))
    assert period.start == utc(2026, 9, 6, 4)
    assert period.end - period.start == timedelta(hours=23)


def test_a_total_budget_never_resets():
    period = period_containing("total", "Asia/Tokyo", utc(2026, 5, 5))
    assert period.start == EPOCH and period.end is None


def test_an_unknown_time_zone_falls_back_to_utc():
    assert period_containing("daily", "Mars/Olympus", utc(2026, 5, 5, 10)).start == utc(2026, 5, 5)


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu"])
def test_day_bounds_and_local_date_agree(tz):
    start, end = day_bounds(date(2026, 11, 21), tz)
    assert local_date(start, tz) == date(2026, 11, 21)
    assert local_date(end - timedelta(microseconds=1), tz) == date(2026, 11, 21)
    assert local_date(end, tz) == date(2026, 11, 22)

"""Template filters for the portal pages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def usd(value: Decimal | float | int | None) -> str:
    """Dollars with two decimals; amounts under a cent keep two significant digits (``$0.000023``)."""
    if value is None:
        return "—"
    amount = Decimal(value)
    if amount == 0 or abs(amount) >= Decimal("0.01"):
        return f"${amount:,.2f}"
    if abs(amount) < Decimal("0.000001"):
        return "<$0.000001"
    digits = min(6, -amount.copy_abs().adjusted() + 1)  # two significant digits, at most micro-dollars
    return f"${amount:.{digits}f}"


@register.filter
def percent_of(value: Decimal | float | int | None, total: Decimal | float | int | None) -> int:
    """``value`` as a whole percentage of ``total`` (0 when there is no total), capped at 100."""
    if not value or not total:
        return 0
    return min(100, round(float(value) * 100 / float(total)))


@register.filter
def duration(value: timedelta | None) -> str:
    """A timedelta in words: ``15 minutes``, ``2 hours``, ``1 day``."""
    if not value:
        return ""
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes >= size and minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"

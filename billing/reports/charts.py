"""Server-rendered SVG charts: geometry computed here, drawn by ``templates/reports/_*_chart.html``.

No JavaScript and no vendored library: the charts print, work without scripts, and carry a
title, a description and per-bar tooltips for assistive technology; each chart's data is also
on the page as a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28  # plot margins (axis labels live there)
MAX_X_LABELS = 12


TICKS = 4  # gridlines above zero
_STEPS = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)


def nice_ceiling(value: float) -> float:
    """An axis maximum at or above ``value`` whose quarters are round numbers (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^n)."""
    if value <= 0:
        return float(TICKS)
    quarter = value / TICKS
    magnitude = 10 ** math.floor(math.log10(quarter))
    step = next(s for s in _STEPS if quarter <= s * magnitude * (1 + 1e-9))
    return step * magnitude * TICKS


def money_label(value: float) -> str:
    """Axis label: ``$1.2k``, ``$35``, ``$0.25``."""
    if value >= 1000:
        return f"${value / 1000:,.2f}".rstrip("0").rstrip(".") + "k"
    if value >= 10 or value == 0:
        return f"${value:,.0f}"
    return f"${value:.2f}".rstrip("0").rstrip(".") if value >= 0.01 else f"${value:.4f}"


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Frame:
    """The plot area and its axes, shared by both chart kinds."""

    width: int
    height: int
    left: int
    top: int
    right: float
    bottom: float
    ticks: list[Tick]
    x_labels: list[XLabel]


def _frame(y_max: float, labels: list[tuple[float, str]]) -> Frame:
    plot_h = HEIGHT - TOP - BOTTOM
    ticks = [Tick(y=TOP + plot_h * (1 - i / TICKS), label=money_label(y_max * i / TICKS)) for i in range(TICKS + 1)]
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    x_labels = [XLabel(x=x, label=text) for i, (x, text) in enumerate(labels) if i % every == 0]
    return Frame(WIDTH, HEIGHT, LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM, ticks, x_labels)


def _day_label(day: date, span_days: int) -> str:
    return day.strftime("%b %-d") if span_days > 1 else day.isoformat()


@dataclass(frozen=True)
class BarChart:
    title: str
    description: str
    frame: Frame
    bars: list[Bar]


def daily_bar_chart(points: list[tuple[date, Decimal]], *, title: str) -> BarChart:
    """Bars of spend per day."""
    y_max = nice_ceiling(float(max((v for _, v in points), default=Decimal(0))))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    gap = min(slot * 0.2, 6)
    bars = []
    for i, (day, value) in enumerate(points):
        h = plot_h * float(value) / y_max
        bars.append(
            Bar(
                x=LEFT + i * slot + gap / 2,
                y=TOP + plot_h - h,
                width=max(slot - gap, 1),
                height=h,
                title=f"{day.isoformat()}: ${value:,.4f}",
            )
        )
    labels = [(LEFT + (i + 0.5) * slot, _day_label(day, len(points))) for i, (day, _) in enumerate(points)]
    total = sum((v for _, v in points), Decimal(0))
    peak = max(points, key=lambda p: p[1], default=None)
    description = f"{len(points)} days, total ${total:,.2f}"
    if peak is not None and peak[1] > 0:
        description += f", highest on {peak[0].isoformat()} at ${peak[1]:,.2f}"
    return BarChart(title=title, description=description + ".", frame=_frame(y_max, labels), bars=bars)


@dataclass(frozen=True)
class BurnChart:
    title: str
    description: str
    frame: Frame
    actual: str  # SVG polyline points
    projection: str
    budget_y: float | None
    last_x: float
    last_y: float


def burn_chart(
    days: list[date], cumulative: list[Decimal], projected: Decimal, budget: Decimal | None, *, title: str
) -> BurnChart:
    """Cumulative month-to-date spend, a dashed line to the projected month end, and the budget."""
    top_value = max([float(projected), float(budget or 0), *(float(c) for c in cumulative)])
    y_max = nice_ceiling(top_value * 1.02)  # keep the budget line off the top edge
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    steps = max(len(days), 1)

    def x(index: float) -> float:  # day i ends at slot i+1: cumulative spend at the end of that day
        return LEFT + plot_w * index / steps

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / y_max)

    points = [(x(0), y(0.0))] + [(x(i + 1), y(float(v))) for i, v in enumerate(cumulative)]
    actual = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    last_x, last_y = points[-1]
    projection = f"{last_x:.1f},{last_y:.1f} {x(steps):.1f},{y(float(projected)):.1f}"
    labels = [(x(i + 1), _day_label(day, steps)) for i, day in enumerate(days)]
    spent = cumulative[-1] if cumulative else Decimal(0)
    description = f"Spent ${spent:,.2f} so far; projected ${projected:,.2f} by month end"
    description += f" against a budget of ${budget:,.2f}." if budget is not None else " (no monthly budget)."
    return BurnChart(
        title=title,
        description=description,
        frame=_frame(y_max, labels),
        actual=actual,
        projection=projection,
        budget_y=y(float(budget)) if budget is not None else None,
        last_x=last_x,
        last_y=last_y,
    )


def category_bar_chart(points: list[tuple[str, Decimal]], *, title: str) -> BarChart:
    """One bar per named amount (e.g. savings by mechanism); a negative amount is drawn as zero."""
    y_max = nice_ceiling(float(max((max(v, Decimal(0)) for _, v in points), default=Decimal(0))))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    gap = min(slot * 0.3, 24)
    bars = []
    for i, (name, value) in enumerate(points):
        h = plot_h * max(float(value), 0.0) / y_max
        bars.append(
            Bar(
                x=LEFT + i * slot + gap / 2,
                y=TOP + plot_h - h,
                width=max(slot - gap, 1),
                height=h,
                title=f"{name}: ${value:,.4f}",
            )
        )
    labels = [(LEFT + (i + 0.5) * slot, name) for i, (name, _) in enumerate(points)]
    total = sum((v for _, v in points), Decimal(0))
    description = ", ".join(f"{name} ${value:,.4f}" for name, value in points) + f"; total ${total:,.4f}."
    frame = _frame(y_max, labels)
    frame.x_labels[:] = [XLabel(x=x, label=text) for x, text in labels]  # every category is labelled
    return BarChart(title=title, description=description, frame=frame, bars=bars)

"""Pure aggregation functions over ``UsageRollup`` querysets: one SQL aggregate each.

The callers pass a queryset already narrowed to the rows that cover a period exactly once
(:func:`billing.reports.periods.covering_rollups`) and to the user's tenants; these functions
only group and sum. Names of teams and keys are looked up in one extra query per table, so the
aggregate itself never joins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from django.db.models import QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import UsageRollup
from tenants.models import ApiKey, Team, Tenant

ZERO = Decimal(0)
Dimension = Literal["tenant", "team", "api_key", "model", "provider", "tier"]
DIMENSIONS: tuple[Dimension, ...] = ("tenant", "team", "api_key", "model", "provider", "tier")
_ID_DIMENSIONS = {"tenant": "tenant_id", "team": "team_id", "api_key": "api_key_id"}


def _sums() -> dict[str, Coalesce]:
    """The summed measures every table shows, NULL-safe (an empty group sums to 0)."""
    money = (
        "cost_usd",
        "saved_by_cache_usd",
        "saved_by_routing_usd",
        "saved_by_reduction_usd",
        "saved_by_prompt_cache_usd",
        "saved_by_semantic_cache_usd",
    )
    counts = (
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cache_hits",
        "tokens_saved",
        "cache_read_tokens",
        "cache_write_tokens",
    )
    sums: dict[str, Coalesce] = {f"{name}_sum": Coalesce(Sum(name), Value(ZERO)) for name in money}
    sums.update({f"{name}_sum": Coalesce(Sum(name), Value(0)) for name in counts})
    return sums


@dataclass
class Measures:
    """Summed usage of one group (or of everything)."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = ZERO
    cache_hits: int = 0
    saved_by_cache_usd: Decimal = ZERO
    saved_by_routing_usd: Decimal = ZERO
    saved_by_reduction_usd: Decimal = ZERO
    tokens_saved: int = 0
    saved_by_prompt_cache_usd: Decimal = ZERO
    saved_by_semantic_cache_usd: Decimal = ZERO  # part of saved_by_cache_usd
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @classmethod
    def from_row(cls, row: dict[str, object]) -> Measures:
        return cls(**{name: row[f"{name}_sum"] for name in cls.__dataclass_fields__})  # type: ignore[arg-type]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def saved_usd(self) -> Decimal:
        return (
            self.saved_by_cache_usd
            + self.saved_by_routing_usd
            + self.saved_by_reduction_usd
            + self.saved_by_prompt_cache_usd
        )

    @property
    def prompt_cache_hit_rate(self) -> float:
        """Share of prompt tokens the providers read from their prompt caches (0..1)."""
        return self.cache_read_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def cache_hit_rate(self) -> float:
        """Share of requests answered from the cache (0..1)."""
        return self.cache_hits / self.requests if self.requests else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def add(self, other: Measures) -> None:
        """Accumulate ``other`` into this one (subtotals)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Group:
    """One row of a breakdown: a dimension value, its display label, and its measures."""

    key: object
    label: str
    measures: Measures
    detail: str = ""  # e.g. a key's team
    share: float = 0.0  # of the table's total cost, 0..1
    extra: dict[str, object] = field(default_factory=dict)


def _labels(dimension: Dimension, keys: Iterable[object]) -> dict[object, tuple[str, str]]:
    """Display label and detail per id (one query), or the value itself for text dimensions."""
    ids = [k for k in keys if k is not None]
    if dimension == "tenant":
        return {t.pk: (t.name, t.slug) for t in Tenant.objects.filter(pk__in=ids)}
    if dimension == "team":
        return {t.pk: (t.name, t.tenant.slug) for t in Team.objects.filter(pk__in=ids).select_related("tenant")}
    if dimension == "api_key":
        keys_ = ApiKey.objects.filter(pk__in=ids).select_related("team")
        return {k.pk: (f"{k.name} ({k.prefix}…)", k.team.name) for k in keys_}
    return {k: (str(k), "") for k in ids}


def _label(dimension: Dimension, key: object, labels: dict[object, tuple[str, str]]) -> tuple[str, str]:
    if key is None or key == "":
        return ("(none)", "")
    if key in labels:
        return labels[key]
    return (f"#{key} (deleted)", "") if dimension in _ID_DIMENSIONS else (str(key), "")


def column_of(dimension: Dimension) -> str:
    """The ``UsageRollup`` column a dimension groups by."""
    return _ID_DIMENSIONS.get(dimension, dimension)


def grouped(rollups: QuerySet[UsageRollup], *dimensions: Dimension) -> list[dict[str, object]]:
    """Sums per combination of ``dimensions``: one query, to be folded by :func:`fold` (maybe more than once)."""
    return list(rollups.values(*(column_of(d) for d in dimensions)).annotate(**_sums()).order_by())


def fold(rows: list[dict[str, object]], dimension: Dimension, *, limit: int | None = None) -> list[Group]:
    """Rows of :func:`grouped` summed per value of one of their dimensions, most expensive first.

    Each group gets its share of the total cost; shares are of all ``rows`` even when ``limit``
    cuts the list (top keys). Labels cost one query for the groups kept.
    """
    column = column_of(dimension)
    sums: dict[object, Measures] = defaultdict(Measures)
    for row in rows:
        sums[row[column]].add(Measures.from_row(row))
    total_cost = sum((m.cost_usd for m in sums.values()), ZERO)
    ranked = sorted(sums.items(), key=lambda item: (-item[1].cost_usd, str(item[0])))[:limit]
    labels = _labels(dimension, (key for key, _ in ranked))
    groups = []
    for key, measures in ranked:
        label, detail = _label(dimension, key, labels)
        share = float(measures.cost_usd / total_cost) if total_cost else 0.0
        groups.append(Group(key=key, label=label, detail=detail, measures=measures, share=share))
    return groups


def breakdown(rollups: QuerySet[UsageRollup], dimension: Dimension, *, limit: int | None = None) -> list[Group]:
    """Usage grouped by one dimension, most expensive first, with shares of the total cost: two queries."""
    return fold(grouped(rollups, dimension), dimension, limit=limit)


def daily(
    rollups: QuerySet[UsageRollup], tz: ZoneInfo, days: list[date]
) -> tuple[list[tuple[date, Measures]], Measures]:
    """Usage per local day for every day in ``days`` (zero-filled), and the total: one query.

    SQL groups by the stored instant only (a hash aggregate on a plain column, no time zone
    arithmetic per row); the few groups are put on local dates here: an hour row by its start,
    a day row by its midpoint, which puts a UTC-aligned day row on the local date it mostly covers.
    """
    rows = rollups.values("granularity", "period_start").annotate(**_sums()).order_by()
    by_day: dict[date, Measures] = defaultdict(Measures)
    total = Measures()
    for row in rows:
        measures = Measures.from_row(row)
        instant = row["period_start"]
        if row["granularity"] == UsageRollup.Granularity.DAY:
            instant += timedelta(hours=12)
        by_day[instant.astimezone(tz).date()].add(measures)
        total.add(measures)
    return [(day, by_day.get(day, Measures())) for day in days], total


def by_team_and_model(rollups: QuerySet[UsageRollup]) -> list[tuple[Group, list[Group]]]:
    """Statement lines: per team (most expensive first) its models, with team subtotals."""
    rows = rollups.values("team_id", "model").annotate(**_sums()).order_by("team_id", "-cost_usd_sum", "model")
    labels = _labels("team", {row["team_id"] for row in rows})
    teams: dict[object, tuple[Group, list[Group]]] = {}
    for row in rows:
        team_id = row["team_id"]
        if team_id not in teams:
            label, detail = _label("team", team_id, labels)
            teams[team_id] = (Group(key=team_id, label=label, detail=detail, measures=Measures()), [])
        subtotal, lines = teams[team_id]
        measures = Measures.from_row(row)
        model_label, _ = _label("model", row["model"], {})
        lines.append(Group(key=row["model"], label=model_label, measures=measures))
        subtotal.measures.add(measures)
    return sorted(teams.values(), key=lambda item: (-item[0].measures.cost_usd, item[0].label))


@dataclass(frozen=True)
class Spend:
    """Cost of one (tenant, team, key, model) combination."""

    tenant_id: int | None
    team_id: int | None
    api_key_id: int | None
    model: str
    cost: Decimal


def spend_by_scope(rollups: QuerySet[UsageRollup]) -> list[Spend]:
    """Cost per (tenant, team, key, model), for matching budgets of any scope in Python: one query."""
    rows = rollups.values_list("tenant_id", "team_id", "api_key_id", "model").annotate(
        cost=Coalesce(Sum("cost_usd"), Value(ZERO))
    )
    return [Spend(*row) for row in rows]

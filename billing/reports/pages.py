"""What each report page shows, as tables and charts built from one :class:`Report`.

A page and its CSV exports call the same builders, so the numbers are the same by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, partial

from django.db.models import Count, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import UsageRollup
from billing.reports import budgets, charts, periods, queries, tables
from billing.reports.forms import ReportScope
from tenants.models import Tenant

TOP_KEYS = 20
OVERVIEW_TOP_KEYS = 5
# URL segment -> (dimension, page title)
BREAKDOWNS: dict[str, tuple[queries.Dimension, str]] = {
    "teams": ("team", "Spend by team"),
    "keys": ("api_key", "Spend by key"),
    "models": ("model", "Spend by model"),
    "providers": ("provider", "Spend by provider"),
    "tiers": ("tier", "Spend by tier"),
    "tenants": ("tenant", "Spend by tenant"),
}


class Report:
    """One request's report over a scope: the covering rows and their totals, computed once."""

    def __init__(self, scope: ReportScope, now: datetime) -> None:
        self.scope = scope
        self.now = now

    @cached_property
    def rollups(self) -> QuerySet[UsageRollup]:
        return self.scope.rollups()

    @cached_property
    def _daily(self) -> tuple[list[tuple[date, queries.Measures]], queries.Measures]:
        return queries.daily(self.rollups, self.scope.tz, self.scope.range.days)

    @property
    def days(self) -> list[tuple[date, queries.Measures]]:
        return self._daily[0]

    @property
    def totals(self) -> queries.Measures:
        """Everything in scope, summed with the days (no query of its own)."""
        return self._daily[1]

    def daily_table(self) -> tables.Table:
        return tables.daily_table(self.days, self.totals)

    def daily_chart(self) -> charts.BarChart:
        points = [(day, m.cost_usd) for day, m in self.days]
        return charts.daily_bar_chart(points, title="Spend per day (USD)")

    def savings_table(self) -> tables.Table:
        return tables.savings_table(self.totals)

    @cached_property
    def _by_tenant_and_key(self) -> list[dict[str, object]]:
        # One aggregate serves the key, top-key and tenant tables of a page (keys belong to one tenant).
        return queries.grouped(self.rollups, "tenant", "api_key")

    def top_keys_table(self, limit: int = TOP_KEYS) -> tables.Table:
        groups = queries.fold(self._by_tenant_and_key, "api_key", limit=limit)
        slug = "top-keys" if limit == TOP_KEYS else f"top-{limit}-keys"
        return tables.top_keys_table(slug, limit, groups)

    def breakdown_table(self, segment: str, *, with_keys: bool = False) -> tables.Table:
        """One breakdown; ``with_keys`` folds the tenant or key table out of the aggregate the top keys use."""
        dimension, title = BREAKDOWNS[segment]
        if with_keys and dimension in ("tenant", "api_key"):
            groups = queries.fold(self._by_tenant_and_key, dimension)
        else:
            groups = queries.breakdown(self.rollups, dimension)
        return tables.breakdown_table(f"by-{segment}", title, dimension, groups, self.totals)

    @cached_property
    def budget_burns(self) -> list[budgets.BudgetBurn]:
        tenant = self.scope.tenant
        if tenant is None:
            return []
        return budgets.burn(list(budgets.budgets_in_scope(tenant, self.scope.team)), tenant, self.now)

    def budgets_table(self) -> tables.Table:
        return tables.budgets_table(self.budget_burns)

    def burn_chart(self) -> charts.BurnChart | None:
        """This month's burn-down for the tenant (or the filtered team) against its monthly budget."""
        tenant = self.scope.tenant
        if tenant is None:
            return None
        tz = periods.zone(tenant.timezone)
        today = self.now.astimezone(tz).date()
        month = periods.month_range(today.year, today.month, tz)
        scope = ReportScope(tenants=[tenant], tenant=tenant, team=self.scope.team, range=month)
        costs = [(day, m.cost_usd) for day, m in queries.daily(scope.rollups(), tz, month.days)[0]]
        monthly = [
            b.amount
            for b in self.budget_burns
            if b.budget.period == b.budget.Period.MONTHLY
            and (b.budget.team_id == self.scope.team.pk if self.scope.team else b.budget.tenant_id == tenant.pk)
        ]
        down = budgets.burn_down(
            costs, today, self.now - month.start, month.end - month.start, monthly[0] if monthly else None
        )
        subject = self.scope.team.name if self.scope.team else tenant.name
        return charts.burn_chart(
            down.days, down.cumulative, down.projected_total, down.budget, title=f"{subject}: spend this month (USD)"
        )


# CSV slug -> the table it exports; every table on every filtered page is here.
TABLES: dict[str, Callable[[Report], tables.Table]] = {
    "daily": Report.daily_table,
    "savings": Report.savings_table,
    "top-keys": Report.top_keys_table,
    f"top-{OVERVIEW_TOP_KEYS}-keys": lambda report: report.top_keys_table(OVERVIEW_TOP_KEYS),
    "budgets": Report.budgets_table,
}
for _segment in BREAKDOWNS:
    TABLES[f"by-{_segment}"] = partial(lambda report, segment: report.breakdown_table(segment), segment=_segment)


def summary(m: queries.Measures) -> dict[str, str]:
    """Headline figures of some usage, formatted for stat boxes."""
    return {
        "cost": tables.usd_text(m.cost_usd),
        "saved": tables.usd_text(m.saved_usd),
        "requests": f"{m.requests:,}",
        "errors": f"{m.errors:,}",
        "error_rate": tables.pct_text(m.error_rate),
        "tokens": f"{m.tokens:,}",
        "prompt_tokens": f"{m.prompt_tokens:,}",
        "completion_tokens": f"{m.completion_tokens:,}",
        "cache_hits": f"{m.cache_hits:,}",
        "cache_hit_rate": tables.pct_text(m.cache_hit_rate),
        "tokens_saved": f"{m.tokens_saved:,}",
        "cache_read_tokens": f"{m.cache_read_tokens:,}",
        "prompt_cache_hit_rate": tables.pct_text(m.prompt_cache_hit_rate),
    }


def overview_context(report: Report) -> dict[str, object]:
    """Totals, savings, cache hit rate, the daily chart and the top keys."""
    s = summary(report.totals)
    context: dict[str, object] = {
        "summary": s,
        "stats": [
            {"label": "Spend", "value": s["cost"], "note": f"{s['requests']} requests"},
            {"label": "Saved", "value": s["saved"], "note": "by cache, routing, token reduction and prompt caching"},
            {"label": "Cache hit rate", "value": s["cache_hit_rate"], "note": f"{s['cache_hits']} cache hits"},
            {
                "label": "Prompt-cache hit rate",
                "value": s["prompt_cache_hit_rate"],
                "note": f"{s['cache_read_tokens']} prompt tokens read from provider caches",
            },
            {
                "label": "Tokens",
                "value": s["tokens"],
                "note": f"{s['prompt_tokens']} in · {s['completion_tokens']} out",
            },
            {"label": "Error rate", "value": s["error_rate"], "note": f"{s['errors']} errors"},
        ],
        "chart": report.daily_chart(),
        "daily_table": report.daily_table(),
        "savings_table": report.savings_table(),
        "top_keys_table": report.top_keys_table(OVERVIEW_TOP_KEYS),
    }
    if report.scope.tenant is None and len(report.scope.tenants) > 1:
        context["tenants_table"] = report.breakdown_table("tenants", with_keys=True)
    return context


@dataclass(frozen=True)
class Statement:
    """A tenant's monthly statement: line items, totals and savings."""

    tenant: Tenant
    month: periods.DateRange
    lines: tables.Table
    savings: tables.Table
    totals: queries.Measures
    provisional: bool
    generated_at: str  # in the tenant's time zone
    savings_chart: charts.BarChart | None = None
    reconciliation: list[Reconciled] = field(default_factory=list)


@dataclass(frozen=True)
class Reconciled:
    """One measure of a statement summed from its rollups and from the raw usage events."""

    label: str
    rollups: Decimal
    events: Decimal

    @property
    def matches(self) -> bool:
        return self.rollups == self.events


def reconcile(tenant: Tenant, month: periods.DateRange, total: queries.Measures) -> list[Reconciled]:
    """The statement's requests, cost and per-mechanism cache savings against the raw usage events.

    Rollups are recomputed from events (``billing.rollups``); a difference means a period is not rolled
    up yet (the current hour) or raw events were pruned (``GATEWAY_USAGE_RETENTION_DAYS``).
    """
    from billing.models import UsageEvent

    events = UsageEvent.objects.filter(tenant_id=tenant.pk, started_at__gte=month.start, started_at__lt=month.end)
    zero = Value(Decimal(0))
    sums = events.aggregate(
        requests=Count("id"),
        cost=Coalesce(Sum("cost_usd"), zero),
        cache=Coalesce(Sum("cost_saved_usd"), zero),
        semantic=Coalesce(Sum("cost_saved_usd", filter=Q(cache_status="SEMANTIC")), zero),
        prompt_cache=Coalesce(Sum("prompt_cache_saved_usd"), zero),
    )
    return [
        Reconciled("Requests", Decimal(total.requests), Decimal(sums["requests"])),
        Reconciled("Cost (USD)", total.cost_usd, sums["cost"]),
        Reconciled("Saved by exact cache (USD)", total.saved_by_cache_usd - total.saved_by_semantic_cache_usd,
                   sums["cache"] - sums["semantic"]),
        Reconciled("Saved by semantic cache (USD)", total.saved_by_semantic_cache_usd, sums["semantic"]),
        Reconciled("Saved by provider prompt caching (USD)", total.saved_by_prompt_cache_usd, sums["prompt_cache"]),
    ]  # fmt: skip


def statement(tenant: Tenant, year: int, month: int, now: datetime) -> Statement:
    """The statement of ``tenant`` for one calendar month in its time zone."""
    tz = periods.zone(tenant.timezone)
    month_range = periods.month_range(year, month, tz)
    scope = ReportScope(tenants=[tenant], tenant=tenant, team=None, range=month_range)
    teams = queries.by_team_and_model(scope.rollups())
    total = queries.Measures()
    for subtotal, _ in teams:
        total.add(subtotal.measures)
    return Statement(
        tenant=tenant,
        month=month_range,
        lines=tables.statement_table(teams, total),
        savings=tables.savings_table(total),
        totals=total,
        provisional=month_range.end > now,
        generated_at=now.astimezone(tz).strftime("%-d %b %Y, %H:%M %Z"),
        savings_chart=charts.category_bar_chart(tables.savings_by_mechanism(total), title="Savings by mechanism"),
        reconciliation=reconcile(tenant, month_range, total),
    )


def presets(scope: ReportScope, now: datetime) -> list[tuple[str, str]]:
    """Quick ranges (label, query string) in the scope's time zone, keeping tenant and team."""
    today = now.astimezone(scope.tz).date()
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    ranges = [
        ("This month", first, today),
        ("Last month", last_month_end.replace(day=1), last_month_end),
        ("Last 7 days", today - timedelta(days=6), today),
        ("Last 30 days", today - timedelta(days=29), today),
        ("Last 90 days", today - timedelta(days=89), today),
    ]
    return [(label, scope.query_string(start=a.isoformat(), end=b.isoformat())) for label, a, b in ranges]

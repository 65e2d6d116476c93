"""Budget burn-down: spend of the current budget period from rollups, and a linear projection.

Enforcement reads Redis counters (settled spend plus reservations); this page reads rollups,
like every report, so a figure here can trail enforcement by the rollup interval (a minute).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from billing.models import Budget, UsageRollup
from billing.periods import period_containing
from billing.reports import periods, queries
from tenants.models import Team, Tenant

ZERO = Decimal(0)
# Burn states, in the order of alarm.
OK, WARNING, PROJECTED_OVER, EXHAUSTED = "ok", "warning", "projected_over", "exhausted"
WARNING_AT = 0.8


def project_linear(spent: Decimal, elapsed: timedelta, length: timedelta) -> Decimal:
    """Spend at the end of a period if it continues at the average rate so far.

    ``elapsed`` is the time since the period started, ``length`` the whole period. Before any
    time has passed there is no rate to extrapolate, so the projection is what was spent.
    """
    if elapsed <= timedelta(0) or length <= timedelta(0):
        return spent
    fraction = Decimal(min(elapsed, length).total_seconds()) / Decimal(length.total_seconds())
    return (spent / fraction).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def runs_out_at(spent: Decimal, amount: Decimal, start: datetime, now: datetime) -> datetime | None:
    """When spend reaches ``amount`` at the average rate since ``start`` (``None``: no spend yet)."""
    if spent >= amount:
        return now
    elapsed = now - start
    if spent <= ZERO or elapsed <= timedelta(0):
        return None
    rate = spent / Decimal(elapsed.total_seconds())  # USD per second
    return now + timedelta(seconds=float((amount - spent) / rate))


@dataclass
class BudgetBurn:
    """How far one budget is through its current period."""

    budget: Budget
    level: str  # Tenant, Team or Key
    scope: str
    amount: Decimal
    spent: Decimal
    period_start: datetime
    period_end: datetime | None
    projected: Decimal | None
    runs_out: datetime | None
    budget_tz: ZoneInfo  # the tenant's, for dates on the page

    @property
    def used(self) -> float:
        return float(self.spent / self.amount) if self.amount else 0.0

    @property
    def remaining(self) -> Decimal:
        return max(self.amount - self.spent, ZERO)

    @property
    def state(self) -> str:
        if self.spent >= self.amount:
            return EXHAUSTED
        if self.projected is not None and self.projected > self.amount:
            return PROJECTED_OVER
        return WARNING if self.used >= WARNING_AT else OK


def budgets_in_scope(tenant: Tenant, team: Team | None) -> QuerySet[Budget]:
    """The tenant's budgets (tenant, team and key ones), or only a team's and its keys' ones."""
    if team is not None:
        scope = Q(team=team) | Q(api_key__team=team)
    else:
        scope = Q(tenant=tenant) | Q(team__tenant=tenant) | Q(api_key__team__tenant=tenant)
    return Budget.objects.filter(scope).select_related("tenant", "team", "api_key", "api_key__team")


def _matches(budget: Budget, row: queries.Spend) -> bool:
    if budget.api_key_id is not None:
        return row.api_key_id == budget.api_key_id and (not budget.model or row.model == budget.model)
    if budget.team_id is not None:
        return row.team_id == budget.team_id
    return row.tenant_id == budget.tenant_id


def scope_label(budget: Budget) -> tuple[str, str]:
    """What a budget limits: ('Tenant', 'Acme'), ('Team', 'web') or ('Key', 'laptop (web), model x')."""
    if budget.api_key is not None:
        suffix = f", model {budget.model}" if budget.model else ""
        return "Key", f"{budget.api_key.name} ({budget.api_key.team.name}){suffix}"
    if budget.team is not None:
        return "Team", budget.team.name
    return "Tenant", budget.tenant.name if budget.tenant else ""


def burn(budgets: list[Budget], tenant: Tenant, now: datetime) -> list[BudgetBurn]:
    """Each budget's spend so far this period and its projection: two queries per distinct period."""
    tz = periods.zone(tenant.timezone)
    by_period: dict[str, list[Budget]] = defaultdict(list)
    for budget in budgets:
        by_period[budget.period].append(budget)
    result = []
    for period, members in by_period.items():
        bounds = period_containing(period, tenant.timezone, now)
        start, end = bounds.start, bounds.end
        rollups = periods.covering_rollups(UsageRollup.objects.all(), {tenant.pk: tz}, start, now)
        rows = queries.spend_by_scope(rollups)
        for budget in members:
            spent = sum((row.cost for row in rows if _matches(budget, row)), ZERO)
            projected = project_linear(spent, now - start, end - start) if end is not None else None
            level, scope = scope_label(budget)
            result.append(
                BudgetBurn(
                    budget=budget,
                    level=level,
                    scope=scope,
                    amount=budget.amount_usd,
                    spent=spent,
                    period_start=start,
                    period_end=end,
                    projected=projected,
                    runs_out=runs_out_at(spent, budget.amount_usd, start, now) if end is not None else None,
                    budget_tz=tz,
                )
            )
    order = [EXHAUSTED, PROJECTED_OVER, WARNING, OK]
    levels = ["Tenant", "Team", "Key"]
    return sorted(result, key=lambda b: (order.index(b.state), levels.index(b.level), -b.used, b.scope))


@dataclass(frozen=True)
class BurnDown:
    """Month-to-date cumulative spend of one scope, its projection to month end, and its budget."""

    days: list[date]
    cumulative: list[Decimal]  # one per elapsed day (today included)
    projected_total: Decimal
    budget: Decimal | None


def burn_down(
    daily_costs: list[tuple[date, Decimal]], today: date, elapsed: timedelta, length: timedelta, budget: Decimal | None
) -> BurnDown:
    """Pure: cumulative spend over the month's days up to ``today`` and the linear month-end projection.

    ``daily_costs`` covers every day of the month; ``elapsed`` of the month's ``length`` has
    passed, so a projection made in the morning does not count today as a full day.
    """
    days = [day for day, _ in daily_costs]
    running = ZERO
    cumulative = []
    for day, cost in daily_costs:
        if day > today:
            break
        running += cost
        cumulative.append(running)
    projected = project_linear(running, elapsed, length)
    return BurnDown(days=days, cumulative=cumulative, projected_total=projected, budget=budget)

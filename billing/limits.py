"""Budgets and rate limits as the hot path reads them: loaded with the config snapshot.

``load_limits`` runs with every snapshot load (``gateway_platform.config.snapshot.register_loader``),
so admission never queries the database: a budget, team, tenant or per-model
limit edit bumps the config version and every process reloads within a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from gateway_platform.config.snapshot import KeyInfo, Snapshot, register_loader

EXTENSION = "billing.limits"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests and tokens per minute (None: no limit at this scope)."""

    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetInfo:
    """One budget as admission sees it."""

    id: int
    scope: str  # "key", "team" or "tenant"
    scope_id: int
    label: str  # for messages: "API key 'laptop'"
    amount_usd: Decimal
    period: str
    action: str
    timezone: str
    model: str = ""
    downgrade_tier: str = ""
    thresholds: tuple[int, ...] = ()
    # A key budget's logical key: its key and every key rotated into it (their spend is the budget's).
    lineage: tuple[int, ...] = ()

    def applies_to(self, model_names: frozenset[str]) -> bool:
        """Whether a request that may be served by ``model_names`` counts against this budget."""
        return not self.model or self.model in model_names


@dataclass(frozen=True, slots=True)
class Limits:
    """Every budget and non-key rate limit, indexed the way admission looks them up."""

    budgets_by_key: dict[int, tuple[BudgetInfo, ...]] = field(default_factory=dict)
    budgets_by_team: dict[int, tuple[BudgetInfo, ...]] = field(default_factory=dict)
    budgets_by_tenant: dict[int, tuple[BudgetInfo, ...]] = field(default_factory=dict)
    team_limits: dict[int, RateLimits] = field(default_factory=dict)
    tenant_limits: dict[int, RateLimits] = field(default_factory=dict)
    model_limits: dict[int, dict[str, RateLimits]] = field(default_factory=dict)

    def budgets_for(self, key: KeyInfo) -> tuple[BudgetInfo, ...]:
        """The budgets above a request of ``key``: the key's, its team's, its tenant's (in that order)."""
        return (
            self.budgets_by_key.get(key.id, ())
            + self.budgets_by_team.get(key.team_id, ())
            + self.budgets_by_tenant.get(key.tenant_id, ())
        )

    def all_budgets(self) -> list[BudgetInfo]:
        groups = (*self.budgets_by_key.values(), *self.budgets_by_team.values(), *self.budgets_by_tenant.values())
        return [budget for group in groups for budget in group]


def budget_info(budget: object) -> BudgetInfo:
    """A ``Budget`` row (with its key/team/tenant loaded) as admission sees it."""
    return _budget_info(budget)[2]


def _budget_info(budget: object) -> tuple[str, int, BudgetInfo]:
    from billing.models import Budget

    assert isinstance(budget, Budget)
    tenant = budget.owner_tenant()
    if budget.api_key is not None:
        scope, scope_id = "key", budget.api_key.pk
    elif budget.team is not None:
        scope, scope_id = "team", budget.team.pk
    else:
        scope, scope_id = "tenant", tenant.pk
    info = BudgetInfo(
        id=budget.pk,
        scope=scope,
        scope_id=scope_id,
        label=budget.scope_label(),
        amount_usd=budget.amount_usd,
        period=budget.period,
        action=budget.action,
        timezone=tenant.timezone,
        model=budget.model,
        downgrade_tier=budget.downgrade_tier,
        thresholds=tuple(sorted(budget.thresholds or ())),
    )
    return scope, scope_id, info


def load_limits() -> Limits:
    """Every budget and team/tenant/per-model limit (synchronous; called by the snapshot loader)."""
    from billing.models import Budget, KeyModelLimit
    from tenants.models import Team, Tenant

    grouped: dict[str, dict[int, list[BudgetInfo]]] = {"key": {}, "team": {}, "tenant": {}}
    budgets = Budget.objects.select_related("api_key__team__tenant", "team__tenant", "tenant").order_by("pk")
    successor = _final_successors()
    lineages: dict[int, list[int]] = {}
    for old, new in successor.items():
        lineages.setdefault(new, []).append(old)
    for budget in budgets:
        scope, scope_id, info = _budget_info(budget)
        if scope == "key" and scope_id in lineages:
            info = replace(info, lineage=(scope_id, *sorted(lineages[scope_id])))
        grouped[scope].setdefault(scope_id, []).append(info)
    # A rotated key still in its grace period spends from its successor's budgets.
    for old, new in successor.items():
        if new in grouped["key"]:
            grouped["key"][old] = grouped["key"][new]
    model_limits: dict[int, dict[str, RateLimits]] = {}
    for row in KeyModelLimit.objects.all():
        model_limits.setdefault(row.api_key_id, {})[row.model] = RateLimits(row.rpm_limit, row.tpm_limit)
    limited = {"rpm_limit__isnull": False}, {"tpm_limit__isnull": False}
    teams = Team.objects.filter(**limited[0]) | Team.objects.filter(**limited[1])
    tenants = Tenant.objects.filter(**limited[0]) | Tenant.objects.filter(**limited[1])
    return Limits(
        budgets_by_key={k: tuple(v) for k, v in grouped["key"].items()},
        budgets_by_team={k: tuple(v) for k, v in grouped["team"].items()},
        budgets_by_tenant={k: tuple(v) for k, v in grouped["tenant"].items()},
        team_limits={t.pk: RateLimits(t.rpm_limit, t.tpm_limit) for t in teams},
        tenant_limits={t.pk: RateLimits(t.rpm_limit, t.tpm_limit) for t in tenants},
        model_limits=model_limits,
    )


def _final_successors() -> dict[int, int]:
    """Each rotated key → the key at the end of its rotation chain."""
    from tenants.models import ApiKey

    step = dict(ApiKey.objects.filter(rotated_to__isnull=False).values_list("pk", "rotated_to"))
    final = {}
    for key in step:
        current, seen = key, {key}
        while current in step and step[current] not in seen:
            current = step[current]
            seen.add(current)
        final[key] = current
    return final


def limits_of(snapshot: Snapshot) -> Limits:
    """The limits loaded with ``snapshot`` (empty when the loader is not registered)."""
    limits = snapshot.extensions.get(EXTENSION)
    return limits if isinstance(limits, Limits) else Limits()


def register() -> None:
    register_loader(EXTENSION, load_limits)

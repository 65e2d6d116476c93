"""Read side of the portal: key lists with their spend, usage summaries, model choices.

Every function takes the requesting user and scopes through ``tenants.permissions``;
views never build an unscoped queryset themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone

from billing import periods
from billing.models import Budget, UsageEvent
from tenants import permissions
from tenants.models import ApiKey, Membership, Team, Tenant

STATUS_ACTIVE, STATUS_REVOKED, STATUS_EXPIRED = "active", "revoked", "expired"
STATUS_CHOICES = [(STATUS_ACTIVE, "Active"), (STATUS_REVOKED, "Revoked"), (STATUS_EXPIRED, "Expired")]

MONEY: DecimalField[Decimal, Decimal] = DecimalField(max_digits=18, decimal_places=10)


def tenant_timezone(tenant: Tenant) -> tzinfo:
    """The tenant's time zone (budget periods and usage days follow it); UTC if unknown."""
    return periods.zone(tenant.timezone)


def month_start(tenant: Tenant, now: datetime | None = None) -> datetime:
    """Midnight on the first of the current month, in the tenant's time zone."""
    return periods.period_containing(periods.MONTHLY, tenant.timezone, now or timezone.now()).start


def _budget_period_start(tenant: Tenant, now: datetime) -> Case:
    """SQL: the start of the current period of the row's ``budget_period`` (monthly when none)."""
    starts = {
        name: periods.period_containing(name, tenant.timezone, now).start
        for name in (periods.DAILY, periods.WEEKLY, periods.TOTAL)
    }
    return Case(
        *(When(budget_period=name, then=Value(start)) for name, start in starts.items()),
        default=Value(month_start(tenant, now)),
    )


def team_keys(
    user: AbstractBaseUser,
    team: Team,
    *,
    since: datetime,
    search: str = "",
    status: str = "",
    owner_id: int | None = None,
) -> QuerySet[ApiKey]:
    """The team's keys this user may see, with status, spend since ``since`` and budget.

    ``budget_spend_usd`` is the spend in the current period of the key's budget
    (daily, weekly, monthly or total, in the tenant's time zone). One query however
    many keys: spend and budget are correlated subqueries on indexed columns
    (``usage_key_time``), not a query per row.
    """
    now = timezone.now()

    def spend(start: Any) -> Coalesce:
        total = (
            UsageEvent.objects.filter(api_key=OuterRef("pk"), started_at__gte=start)
            .order_by()
            .values("api_key")
            .annotate(total=Sum("cost_usd"))
            .values("total")
        )
        return Coalesce(Subquery(total, output_field=MONEY), Value(Decimal(0)), output_field=MONEY)

    budget = Budget.objects.filter(api_key=OuterRef("pk")).order_by("amount_usd")
    keys = (
        permissions.visible_keys(user)
        .filter(team=team)
        .select_related("created_by")
        .annotate(
            status=Case(
                When(revoked_at__isnull=False, then=Value(STATUS_REVOKED)),
                When(expires_at__lte=now, then=Value(STATUS_EXPIRED)),
                default=Value(STATUS_ACTIVE),
                output_field=CharField(),
            ),
            spend_usd=spend(since),
            budget_usd=Subquery(budget.values("amount_usd")[:1]),
            budget_period=Subquery(budget.values("period")[:1]),
            can_manage=Exists(permissions.manageable_keys(user).filter(pk=OuterRef("pk"))),
        )
        .annotate(budget_since=_budget_period_start(team.tenant, now))
        .annotate(budget_spend_usd=spend(OuterRef("budget_since")))
    )
    if search:
        keys = keys.filter(Q(name__icontains=search) | Q(prefix__icontains=search))
    if status:
        keys = keys.filter(status=status)
    if owner_id is not None:
        keys = keys.filter(created_by_id=owner_id)
    return keys.order_by("status", "-created_at")


def key_owners(user: AbstractBaseUser, team: Team) -> list[tuple[int, str]]:
    """(id, username) of the people who created the keys this user can see in ``team``."""
    owner_ids = permissions.visible_keys(user).filter(team=team, created_by__isnull=False).values("created_by_id")
    users = get_user_model().objects.filter(pk__in=owner_ids).order_by("username")
    return [(u.pk, u.get_username()) for u in users]


def user_teams(user: AbstractBaseUser) -> QuerySet[Team]:
    """The teams this user sees, each with the user's role and how many keys they see there."""
    role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
    visible = permissions.visible_keys(user).filter(team=OuterRef("pk"), revoked_at__isnull=True)
    active_keys = visible.order_by().values("team").annotate(n=Count("pk", distinct=True)).values("n")
    return (
        permissions.visible_teams(user)
        .select_related("tenant")
        .annotate(my_role=Subquery(role), active_keys=Coalesce(Subquery(active_keys), Value(0)))
        .order_by("tenant__name", "name")
    )


def model_choices(team: Team) -> list[tuple[str, list[tuple[str, str]]]]:
    """Tiers and models a key of ``team`` may be limited to, grouped for a select.

    The names the gateway knows: enabled global tiers and the tenant's own tiers,
    enabled models. If the team carries its own allowed set (``Team.allowed_models``
    when that field exists and is non-empty), only names inside it are offered.
    """
    from providers.models import Model
    from routing.models import Tier

    tiers = (
        Tier.objects.filter(enabled=True)
        .filter(Q(tenant__isnull=True) | Q(tenant_id=team.tenant_id))
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )
    models = Model.objects.filter(enabled=True).order_by("name").values_list("name", flat=True)
    allowed = set(getattr(team, "allowed_models", None) or [])
    groups = [
        ("Tiers", [(name, name) for name in tiers if not allowed or name in allowed]),
        ("Models", [(name, name) for name in models if not allowed or name in allowed]),
    ]
    return [(label, options) for label, options in groups if options]


def tier_names(choices: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    """The tier names among ``model_choices()``."""
    return [name for label, options in choices if label == "Tiers" for name, _ in options]


@dataclass(frozen=True)
class UsageSummary:
    """Usage of one team (or one member's keys in it) since a date."""

    since: datetime
    whole_team: bool
    totals: dict[str, Any]
    per_key: list[dict[str, Any]]
    per_day: list[dict[str, Any]]


def _usage_columns() -> dict[str, Any]:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status_code__gte=400)),
        "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
        "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
        "cost_usd": Coalesce(Sum("cost_usd"), Value(Decimal(0)), output_field=MONEY),
    }


def usage_summary(user: AbstractBaseUser, team: Team, *, since: datetime) -> UsageSummary:
    """Totals, per key and per day (tenant time zone) — the team's for managers, else the user's."""
    whole_team = permissions.can_see_team_usage(user, team)
    events = UsageEvent.objects.filter(team=team, started_at__gte=since)
    if not whole_team:
        events = events.filter(api_key__in=permissions.visible_keys(user).filter(team=team).values("pk"))
    events = events.order_by()
    per_key = list(
        events.values("api_key_id", "api_key__name", "api_key__prefix")
        .annotate(**_usage_columns())
        .order_by("-cost_usd", "api_key__name")
    )
    per_day = list(
        events.annotate(day=TruncDay("started_at", tzinfo=tenant_timezone(team.tenant)))
        .values("day")
        .annotate(**_usage_columns())
        .order_by("day")
    )
    totals = events.aggregate(**_usage_columns())
    return UsageSummary(since=since, whole_team=whole_team, totals=totals, per_key=per_key, per_day=per_day)

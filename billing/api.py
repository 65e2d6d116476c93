"""Management API for budgets and usage (``/api/budgets/``, ``/api/usage/``).

Mounted by ``gateway_platform.api_urls`` from ``ROUTES``. Who may do what comes
from ``tenants.permissions``, like everywhere else: budgets and usage are read
by the tenant's admins and finance users, budgets are written by tenant
admins (superusers: everything). Another tenant's budget is a 404.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from billing.limits import budget_info
from billing.models import Budget, UsageRollup, UsageRollupQuerySet
from billing.serializers import BudgetSerializer, BudgetStatusSerializer, UsageQuerySerializer, UsageRowSerializer
from billing.spend import budget_status
from tenants import permissions
from tenants.api import ScopedViewSet
from tenants.models import ApiKey, Team, Tenant


def _owned_by(tenants: QuerySet[Tenant]) -> Q:
    return Q(tenant__in=tenants) | Q(team__tenant__in=tenants) | Q(api_key__team__tenant__in=tenants)


class BudgetViewSet(ScopedViewSet):
    """Budgets on a tenant, team or key: tenant admins and finance read them, tenant admins change them."""

    serializer_class = BudgetSerializer
    filterset_fields = ("tenant", "team", "api_key", "period", "action")
    ordering_fields = ("created_at", "amount_usd")
    scoped_choices = {"tenant": "tenants_for", "team": "teams_for", "api_key": "keys_for"}

    def tenants_for(self, user: Any) -> QuerySet[Tenant]:
        return permissions.administered_tenants(user)

    def teams_for(self, user: Any) -> QuerySet[Team]:
        return Team.objects.filter(tenant__in=permissions.administered_tenants(user))

    def keys_for(self, user: Any) -> QuerySet[ApiKey]:
        return ApiKey.objects.filter(team__tenant__in=permissions.administered_tenants(user))

    def visible(self, user: Any) -> QuerySet[Budget]:
        budgets = Budget.objects.select_related("tenant", "team__tenant", "api_key__team__tenant")
        if not user.is_superuser:
            budgets = budgets.filter(_owned_by(permissions.reportable_tenants(user)))
        return budgets.order_by("pk")

    def may_create(self, user: Any) -> bool:
        return permissions.administered_tenants(user).exists()

    def may_change(self, user: Any, obj: Budget) -> bool:
        return permissions.can_administer_tenant(user, obj.owner_tenant())

    @extend_schema(
        summary="Where a budget stands",
        description="The current period (in the tenant's time zone), spend, reservations in flight and what remains.",
        responses=BudgetStatusSerializer,
    )
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        budget = self.get_object()
        state = budget_status(budget=budget_info(budget), now=timezone.now())
        data = {"amount_usd": budget.amount_usd, **asdict(state)}
        return Response(BudgetStatusSerializer(data).data)


class UsageViewSet(viewsets.GenericViewSet):
    """Usage aggregated from rollups, filtered and grouped (tenant admins and finance see their tenants)."""

    permission_classes = [IsAuthenticated]
    serializer_class = UsageRowSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> UsageRollupQuerySet:
        rollups: UsageRollupQuerySet = UsageRollup.objects.all()  # type: ignore[assignment]
        user = self.request.user
        if not user.is_superuser:
            rollups = rollups.filter(tenant__in=permissions.reportable_tenants(user))
        return rollups

    @extend_schema(
        summary="Usage totals",
        description=(
            "Sums of usage rollups over a date range (UTC days), optionally grouped by `period` and any of "
            "`tenant`, `team`, `api_key`, `model`, `provider`, `tier`. Hour rows include the current hour; "
            "day rows are tenant-local days and exist once a day is over."
        ),
        parameters=[UsageQuerySerializer],
        responses=UsageRowSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        rollups = self.get_queryset().filter(
            granularity=params["granularity"], period_start__gte=params["start_at"], period_start__lt=params["end_at"]
        )
        for name in ("tenant", "team", "api_key"):
            if name in params:
                rollups = rollups.filter(**{f"{name}_id": params[name]})
        for name in ("model", "provider", "tier"):
            if name in params:
                rollups = rollups.filter(**{name: params[name]})
        if not params["group_by"]:
            rows: Any = [rollups.grand_total()]
        else:
            rows = rollups.totals(params["group_by"])
        page = self.paginate_queryset(rows)
        if page is not None:
            return self.get_paginated_response(UsageRowSerializer(page, many=True).data)
        return Response(UsageRowSerializer(rows, many=True).data)


ROUTES = [
    ("budgets", BudgetViewSet, "budget"),
    ("usage", UsageViewSet, "usage"),
]

"""Admin for cascade routing outcomes and guardrail policies.

``RoutingOutcome`` rows are written by the usage drain and are read-only here;
the change list shows, above the rows, the escalation rate per initial tier
over the rows the current filters select (the number to watch when tuning a
tenant's ``cascade_quality_threshold``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Avg, Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from routing.models import GuardrailPolicy, RoutingOutcome
from tenants.admin_scoping import TenantScopedAdminMixin


def escalation_summary(outcomes: QuerySet[RoutingOutcome]) -> list[dict[str, Any]]:
    """Per initial tier: decisions, escalations, escalation rate, mean quality, success rate."""
    rows = (
        outcomes.order_by()
        .values("initial_tier")
        .annotate(
            total=Count("id"),
            escalated_count=Count("id", filter=Q(escalated=True)),
            succeeded=Count("id", filter=Q(success=True)),
            mean_quality=Avg("quality_score"),
        )
        .order_by("initial_tier")
    )
    return [
        {
            **row,
            "escalation_rate": row["escalated_count"] / row["total"],
            "success_rate": row["succeeded"] / row["total"],
        }
        for row in rows
    ]


@admin.register(RoutingOutcome)
class RoutingOutcomeAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "tenant",
        "initial_tier",
        "final_tier",
        "escalated",
        "quality_score",
        "reason",
        "latency_ms",
        "success",
    )
    list_filter = (
        "escalated",
        "success",
        "initial_tier",
        "final_tier",
        ("tenant", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    search_fields = ("request_id", "query_hash", "reason")
    readonly_fields = [f.name for f in RoutingOutcome._meta.fields]
    tenant_lookups = ("tenant",)
    tenant_admin_permissions = ("view",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RoutingOutcome | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data and "cl" in response.context_data:
            response.context_data["escalation_summary"] = escalation_summary(response.context_data["cl"].queryset)
        return response


@admin.register(GuardrailPolicy)
class GuardrailPolicyAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "mode", "command_list", "updated_at")
    list_filter = ("mode",)
    autocomplete_fields = ("tenant",)
    search_fields = ("tenant__slug", "tenant__name")
    tenant_lookups = ("tenant",)
    global_rows_readonly = True

    @admin.display(description="commands")
    def command_list(self, obj: GuardrailPolicy) -> str:
        return ", ".join(obj.commands)

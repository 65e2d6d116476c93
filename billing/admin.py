from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from billing.models import Budget, UsageEvent


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "request_id",
        "tenant",
        "api_key",
        "requested_model",
        "tier",
        "model",
        "provider",
        "status_code",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "cache_status",
        "stream",
    )
    list_filter = ("status_code", "stream", "cache_status", "provider", "tenant")
    search_fields = ("request_id", "requested_model", "model")
    date_hierarchy = "started_at"
    list_select_related = ("tenant", "api_key")
    show_full_result_count = False  # no COUNT(*) over a big table on every page

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "tenant", "team", "api_key", "amount_usd", "period", "action")
    list_filter = ("period", "action")
    autocomplete_fields = ("tenant", "team", "api_key")

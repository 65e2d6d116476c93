from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from billing import deadletter
from billing.models import AlertChannel, AlertDelivery, Budget, BudgetAlert, KeyModelLimit, UsageEvent
from tenants.admin_scoping import TenantScopedAdminMixin, TenantScopedInlineMixin, is_platform_admin


class AlertDeliveryInline(TenantScopedInlineMixin, admin.TabularInline):
    """Where each alert went and how that went (the outbox rows, read-only)."""

    model = AlertDelivery
    extra = 0
    fields = ("channel", "state", "attempts", "next_attempt_at", "delivered_at", "last_error")
    readonly_fields = fields
    tenant_admin_permissions = ("view",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(UsageEvent)
class UsageEventAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
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
    # "=": exact matches, so the (partial) index on the client's id serves the search.
    search_fields = ("=request_id", "=client_request_id", "=session", "requested_model", "model")
    date_hierarchy = "started_at"
    list_select_related = ("tenant", "api_key")
    show_full_result_count = False  # no COUNT(*) over a big table on every page
    tenant_lookups = ("tenant",)
    tenant_admin_permissions = ("view",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_platform_admin(request) and super().has_delete_permission(request, obj)  # type: ignore[arg-type]

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.dead_letters_view)
        return [path("dead-letters/", view, name="billing_usageevent_dead_letters"), *super().get_urls()]

    def dead_letters_view(self, request: HttpRequest) -> HttpResponse:
        """The usage dead-letter stream (every tenant's records: platform admins only), with re-drive/discard."""
        if not is_platform_admin(request):
            raise PermissionDenied
        from gateway_platform.redis_clients import sync_client

        client = sync_client()
        if request.method == "POST":
            ids = request.POST.getlist("ids")
            if request.POST.get("action") == "discard":
                messages.warning(request, f"{deadletter.discard(client, ids)} dead letters discarded.")
            else:
                result = deadletter.redrive(client, ids=ids or None)
                messages.info(request, f"{len(result.landed)} stored, {len(result.failed)} still refused.")
            return HttpResponseRedirect(reverse("admin:billing_usageevent_dead_letters"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Usage dead letters",
            "letters": deadletter.entries(client),
            "depth": deadletter.depth(client),
        }
        return TemplateResponse(request, "admin/billing/dead_letters.html", context)


@admin.register(Budget)
class BudgetAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "tenant", "team", "api_key", "model", "amount_usd", "period", "action", "thresholds")
    list_filter = ("period", "action")
    search_fields = ("tenant__slug", "team__slug", "team__tenant__slug", "api_key__name", "api_key__prefix", "model")
    autocomplete_fields = ("tenant", "team", "api_key")
    # A budget belongs to a tenant, a team or a key: in scope if whichever it is belongs to the user's tenants.
    tenant_lookups = ("tenant", "team__tenant", "api_key__team__tenant")


@admin.register(KeyModelLimit)
class KeyModelLimitAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("api_key", "model", "rpm_limit", "tpm_limit")
    search_fields = ("model", "api_key__name")
    autocomplete_fields = ("api_key",)
    tenant_lookups = ("api_key__team__tenant",)


@admin.register(AlertChannel)
class AlertChannelAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("tenant", "kind", "target", "enabled", "created_at")
    list_filter = ("kind", "enabled")
    autocomplete_fields = ("tenant",)
    tenant_lookups = ("tenant",)


@admin.register(BudgetAlert)
class BudgetAlertAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Alerts sent: one per budget, period and threshold (read-only)."""

    list_display = ("created_at", "budget", "threshold", "spent_usd", "amount_usd", "period_start", "delivery")
    list_select_related = ("budget__tenant", "budget__team", "budget__api_key")
    inlines = [AlertDeliveryInline]

    @admin.display(description="delivery")
    def delivery(self, obj: BudgetAlert) -> str:
        states = [d.state for d in obj.deliveries.all()]
        return ", ".join(f"{states.count(s)} {s.replace('_', ' ')}" for s in sorted(set(states))) or "no channel"

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("deliveries")

    list_filter = ("threshold", "created_at")
    tenant_lookups = ("budget__tenant", "budget__team__tenant", "budget__api_key__team__tenant")
    tenant_admin_permissions = ("view",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from caching.embedders import embedder_status
from caching.eviction import forget_exact
from caching.models import CacheEntry, CachePolicy, CacheStat
from caching.policy import policy_info
from providers.models import Model
from tenants.admin_scoping import TenantScopedAdminMixin


@admin.register(CachePolicy)
class CachePolicyAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "enabled", "semantic_layer", "semantic_threshold", "ttl_seconds", "max_entries")
    autocomplete_fields = ("tenant",)
    tenant_lookups = ("tenant",)
    global_rows_readonly = True
    readonly_fields = ("semantic_layer", "updated_at")
    fieldsets = (
        (None, {"fields": ("tenant", "enabled", "ttl_seconds", "max_entries")}),
        ("What is cached", {"fields": ("cacheable_routes", "cacheable_models", "max_temperature")}),
        ("Tools", {"fields": ("tools_rule", "read_only_tools")}),
        (
            "Semantic layer",
            {
                "description": "Changing the embedder empties the semantic entries of the tenants it governs.",
                "fields": (
                    "semantic_layer",
                    "semantic_enabled",
                    "semantic_threshold",
                    "embedder",
                    "embedding_model",
                    "embedding_dimensions",
                ),
            },
        ),
        (None, {"fields": ("updated_at",)}),
    )

    @admin.display(description="semantic layer")
    def semantic_layer(self, obj: CachePolicy) -> str:
        if obj.pk is None:
            return "Save to see whether the semantic layer works."
        names = set(Model.objects.filter(enabled=True).values_list("name", flat=True))
        return embedder_status(policy_info(obj), names)


@admin.register(CacheEntry)
class CacheEntryAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Cached prompts and answers: each tenant admin sees (and may forget) only their tenant's."""

    list_display = (
        "created_at",
        "tenant",
        "short_prompt",
        "model",
        "embedder",
        "hit_count",
        "last_hit_at",
        "expires_at",
    )
    list_filter = ("tenant", "model", "embedder")
    search_fields = ("prompt_text",)
    exclude = ("embedding",)
    list_select_related = ("tenant",)
    show_full_result_count = False
    tenant_lookups = ("tenant",)
    tenant_admin_permissions = ("view", "delete")

    @admin.display(description="prompt")
    def short_prompt(self, obj: CacheEntry) -> str:
        return obj.prompt_text[:80] or "(exact layer only)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: CacheEntry) -> None:
        forget_exact([obj.exact_key])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CacheEntry]) -> None:
        forget_exact(list(queryset.values_list("exact_key", flat=True)))
        super().delete_queryset(request, queryset)


@admin.register(CacheStat)
class CacheStatAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "day",
        "tenant",
        "exact_hits",
        "semantic_hits",
        "misses",
        "bypasses",
        "tokens_saved",
        "cost_saved_usd",
    )
    list_filter = ("day",)
    tenant_lookups = ("tenant",)
    tenant_admin_permissions = ("view",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

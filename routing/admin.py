from __future__ import annotations

from django.contrib import admin

from routing.models import ConfigSection, RoutingPolicy, Tier, TierModel


class TierModelInline(admin.TabularInline):
    model = TierModel
    extra = 1
    autocomplete_fields = ("model",)
    ordering = ("position",)


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "model_chain", "max_cost_per_million", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name", "description")
    inlines = [TierModelInline]

    @admin.display(description="models (primary first)")
    def model_chain(self, obj: Tier) -> str:
        return " → ".join(tm.model.name for tm in obj.tier_models.select_related("model"))


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "strategy", "fallback_model", "fallback_enabled", "updated_at")
    autocomplete_fields = ("tenant", "fallback_model")


@admin.register(ConfigSection)
class ConfigSectionAdmin(admin.ModelAdmin):
    list_display = ("name", "applied", "imported_at")
    readonly_fields = ("name", "data", "applied", "imported_at")

from __future__ import annotations

from django.contrib import admin

from providers.models import Model, Provider


class ModelInline(admin.TabularInline):
    model = Model
    extra = 0
    fields = (
        "name",
        "upstream_model",
        "input_cost_per_million",
        "output_cost_per_million",
        "context_window",
        "enabled",
    )
    show_change_link = True


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "base_url", "api_key_env", "credential_set", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url")
    inlines = [ModelInline]

    @admin.display(boolean=True, description="credential set")
    def credential_set(self, obj: Provider) -> bool:
        return obj.has_credential


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "provider",
        "upstream_model",
        "input_cost_per_million",
        "output_cost_per_million",
        "context_window",
        "enabled",
    )
    list_filter = ("provider", "enabled")
    search_fields = ("name", "upstream_model")
    list_editable = ("enabled",)

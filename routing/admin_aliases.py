"""Admin for model aliases (``routing.aliases``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from providers.models import Model
from routing.models import ModelAlias, Tier
from tenants.admin_scoping import TenantScopedAdminMixin


class ModelAliasForm(forms.ModelForm):
    class Meta:
        model = ModelAlias
        fields = ("tenant", "pattern", "target", "position", "description", "enabled")

    def clean_target(self) -> str:
        """A target must name something that exists now: a model, a tier, ``auto`` or ``provider:model``."""
        target = (self.cleaned_data.get("target") or "").strip()
        if target == "auto" or ":" in target:
            return target
        tenant = self.cleaned_data.get("tenant")
        tiers = Tier.objects.filter(Q(tenant=None) | Q(tenant=tenant) if tenant is not None else Q(tenant=None))
        # Only the tiers this alias's tenant can use: another tenant's tier names are not an answer here.
        if Model.objects.filter(name=target).exists() or tiers.filter(name=target).exists():
            return target
        raise forms.ValidationError("Name a model, a tier, auto or provider:model (aliases do not chain).")


@admin.register(ModelAlias)
class ModelAliasAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    form = ModelAliasForm
    tenant_lookups = ("tenant",)
    global_rows_readonly = True
    list_display = ("pattern", "target", "scope", "position", "enabled", "description")
    list_editable = ("enabled",)
    list_filter = ("enabled", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("pattern", "target", "tenant__slug")
    autocomplete_fields = ("tenant",)
    ordering = ("tenant__slug", "position", "pattern")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelAlias]:
        return super().get_queryset(request).select_related("tenant")

    @admin.display(description="scope", ordering="tenant__slug")
    def scope(self, obj: ModelAlias) -> str:
        return str(obj.tenant) if obj.tenant is not None else "global"

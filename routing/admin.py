from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.db.models.query import Prefetch
from django.http import HttpRequest

from routing.models import Balancing, ConfigSection, RoutingPolicy, Skill, Tier, TierModel
from routing.models.tiers import MAX_WEIGHT
from tenants.admin_scoping import (
    GlobalConfigAdminMixin,
    TenantScopedAdminMixin,
    TenantScopedInlineMixin,
    is_platform_admin,
)


def _scope(tenant: object | None) -> str:
    return str(tenant) if tenant is not None else "global"


class TierModelForm(forms.ModelForm):
    """A tier member; a form that leaves the weight out (older scripts, the browser tests) keeps the default 1."""

    weight = forms.IntegerField(
        min_value=1,
        max_value=MAX_WEIGHT,
        required=False,
        initial=1,
        help_text=TierModel._meta.get_field("weight").help_text,
    )

    class Meta:
        model = TierModel
        fields = ("model", "position", "weight")

    def clean_weight(self) -> int:
        weight = self.cleaned_data.get("weight")
        return 1 if weight is None else weight


class TierModelInline(TenantScopedInlineMixin, admin.TabularInline):
    model = TierModel
    form = TierModelForm
    extra = 1
    autocomplete_fields = ("model",)
    ordering = ("position", "-weight")
    fields = ("model", "position", "weight")


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = (
            "tenant",
            "name",
            "description",
            "enabled",
            "balancing",
            "capabilities",
            "complexity_max",
            "max_output_tokens",
            "max_cost_per_million",
        )
        help_texts = {
            "capabilities": "Comma-separated tags (file_ops, grep, refactoring, architecture, ...): "
            "`auto` sends requests whose keywords match a tag to this tier's band.",
            "tenant": "Empty for a global tier. A tenant tier with a global tier's name overrides it for that "
            "tenant's keys; fields left empty (models, capabilities, band, output cap) are inherited.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "balancing" in self.fields:
            self.fields["balancing"].required = False  # left out: the default (weighted)

    def clean_balancing(self) -> str:
        return self.cleaned_data.get("balancing") or Balancing.WEIGHTED

    def clean_complexity_max(self) -> float | None:
        value = self.cleaned_data.get("complexity_max")
        if value is not None and not 0 < value <= 1:
            raise forms.ValidationError("A complexity band edge is a score greater than 0 and at most 1.")
        return value


@admin.register(Tier)
class TierAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Global tiers (platform) and each tenant's own tiers and overrides (its admins)."""

    form = TierForm
    tenant_lookups = ("tenant",)
    global_rows_readonly = True
    list_display = ("name", "scope", "band", "model_chain", "capabilities_list", "max_output_tokens", "enabled")
    list_filter = ("enabled", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "description", "tenant__slug")
    autocomplete_fields = ("tenant",)
    ordering = ("tenant__slug", "complexity_max", "name")
    inlines = [TierModelInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tier]:
        members = Prefetch(
            "tier_models", queryset=TierModel.objects.order_by("position", "-weight", "pk").select_related("model")
        )
        return super().get_queryset(request).select_related("tenant").prefetch_related(members)

    @admin.display(description="scope", ordering="tenant__slug")
    def scope(self, obj: Tier) -> str:
        return _scope(obj.tenant)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        over = form.instance.models_over_cost_cap()
        if over:
            messages.warning(
                request,
                f"{', '.join(over)} cost more per million input tokens than this tier's max_cost_per_million "
                "and are skipped when routing through it.",
            )

    @admin.display(description="auto band", ordering="complexity_max")
    def band(self, obj: Tier) -> str:
        return f"≤ {obj.complexity_max:.2f}" if obj.complexity_max is not None else "—"

    @admin.display(description="models (primary first)")
    def model_chain(self, obj: Tier) -> str:
        """Positions in order; a shared position lists its models with their weights and the strategy."""
        over = set(obj.models_over_cost_cap())

        def label(name: str, weight: int, shared: bool) -> str:
            text = f"{name} ×{weight}" if shared else name
            return f"{text} (over cap: skipped)" if name in over else text

        chain = []
        for members in obj.positions():
            shared = len(members) > 1
            text = " | ".join(label(name, weight, shared) for name, weight in members)
            chain.append(f"[{text}: {obj.balancing}]" if shared else text)
        return " → ".join(chain)

    @admin.display(description="capabilities")
    def capabilities_list(self, obj: Tier) -> str:
        return ", ".join(obj.capabilities)


class SkillForm(forms.ModelForm):
    class Meta:
        model = Skill
        fields = ("tenant", "slug", "name", "description", "system_prompt", "forced_tier", "enabled")
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 20, "cols": 100})}

    def clean_forced_tier(self) -> str:
        name = (self.cleaned_data.get("forced_tier") or "").strip()
        if not name:
            return ""
        tenant = self.cleaned_data.get("tenant")
        scope = Q(tenant=None) | Q(tenant=tenant) if tenant is not None else Q(tenant=None)
        names = sorted(set(Tier.objects.filter(scope).values_list("name", flat=True)))
        if name not in names:
            raise forms.ValidationError(f"No tier '{name}'. Tiers: {', '.join(names) or 'none'}.")
        return name


@admin.register(Skill)
class SkillAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    form = SkillForm
    tenant_lookups = ("tenant",)
    global_rows_readonly = True
    list_display = ("slug", "name", "scope", "forced_tier", "enabled", "updated_at")
    list_filter = ("enabled", ("tenant", admin.RelatedOnlyFieldListFilter), "forced_tier")
    search_fields = ("slug", "name", "description", "system_prompt")
    autocomplete_fields = ("tenant",)
    list_editable = ("enabled",)
    ordering = ("slug", "tenant__slug")
    actions = ["enable", "disable"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Skill]:
        return super().get_queryset(request).select_related("tenant")

    @admin.display(description="scope", ordering="tenant__slug")
    def scope(self, obj: Skill) -> str:
        return _scope(obj.tenant)

    @admin.action(description="Enable selected skills", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Skill]) -> None:
        self._set_enabled(self._writable(request, queryset), True)

    @admin.action(description="Disable selected skills", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Skill]) -> None:
        self._set_enabled(self._writable(request, queryset), False)

    @staticmethod
    def _writable(request: HttpRequest, queryset: QuerySet[Skill]) -> QuerySet[Skill]:
        # Tenant admins read global skills; actions must not change them either.
        return queryset if is_platform_admin(request) else queryset.exclude(tenant=None)

    @staticmethod
    def _set_enabled(queryset: QuerySet[Skill], enabled: bool) -> None:
        # save() per row, not update(): the post-save signal bumps the configuration version.
        for skill in queryset:
            if skill.enabled != enabled:
                skill.enabled = enabled
                skill.save(update_fields=["enabled", "updated_at"])


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "strategy",
        "baseline_tier",
        "cascade_enabled",
        "fallback_model",
        "fallback_enabled",
        "updated_at",
    )
    list_filter = ("strategy", "cascade_enabled", "code_mode")
    search_fields = ("tenant__slug", "tenant__name")
    autocomplete_fields = ("tenant", "fallback_model")
    tenant_lookups = ("tenant",)
    global_rows_readonly = True


@admin.register(ConfigSection)
class ConfigSectionAdmin(GlobalConfigAdminMixin, admin.ModelAdmin):
    """Imported config-file sections: platform-wide, superusers only."""

    list_display = ("name", "applied", "imported_at")
    readonly_fields = ("name", "data", "applied", "imported_at")


from routing import admin_aliases, admin_cascade  # noqa: E402,F401

"""Admin for providers and models: health, circuit state, recent traffic, and operator actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, F, Func, IntegerField, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from redis.exceptions import RedisError

from billing.models import UsageEvent
from providers import circuit, probes
from providers.models import Model, Provider, ProviderHealth
from tenants.admin_scoping import GlobalConfigAdminMixin

STATUS_COLOURS: dict[str, str] = {
    ProviderHealth.Status.HEALTHY: "#2e7d32",
    ProviderHealth.Status.DEGRADED: "#ef6c00",
    ProviderHealth.Status.DOWN: "#c62828",
    ProviderHealth.Status.UNKNOWN: "#757575",
}
CIRCUIT_COLOURS: dict[str, str] = {circuit.CLOSED: "#2e7d32", circuit.HALF_OPEN: "#ef6c00", circuit.OPEN: "#c62828"}
USAGE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class UsageCounts:
    """Requests a provider served in the usage window, how many failed, how many needed a failover."""

    requests: int = 0
    errors: int = 0
    fallbacks: int = 0


def usage_counts(provider_names: list[str]) -> dict[str, UsageCounts]:
    """24 h counts per provider name in one grouped query (uses the ``started_at`` index).

    ``errors`` are answers with status ≥ 400; ``fallbacks`` are requests with more
    than one upstream attempt (what ``X-Gateway-Fallback`` reports).
    """
    if not provider_names:
        return {}
    rows = (
        UsageEvent.objects.filter(started_at__gte=timezone.now() - USAGE_WINDOW, provider__in=provider_names)
        .alias(hops=Func(F("attempts"), function="jsonb_array_length", output_field=IntegerField()))
        .values("provider")
        .annotate(
            requests=Count("pk"),
            errors=Count("pk", filter=Q(status_code__gte=400)),
            fallbacks=Count("pk", filter=Q(hops__gt=1)),
        )
        .order_by()
    )
    return {row["provider"]: UsageCounts(row["requests"], row["errors"], row["fallbacks"]) for row in rows}


def _coloured(text: str, colour: str) -> SafeString:
    return format_html('<span style="color: {}; font-weight: bold">{}</span>', colour, text)


def _health(provider: Provider) -> ProviderHealth | None:
    try:
        return provider.health
    except ProviderHealth.DoesNotExist:
        return None


def _reset_circuits(request: HttpRequest, model_admin: admin.ModelAdmin, names: list[str]) -> None:
    try:
        for name in names:
            circuit.reset(name)
    except RedisError as exc:
        model_admin.message_user(request, f"Redis is unavailable: {exc.__class__.__name__}", messages.ERROR)
        return
    model_admin.message_user(request, f"Reset {len(names)} circuit(s).", messages.SUCCESS)


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


class ProviderForm(forms.ModelForm):
    """The provider with a write-only field for a tenant's own credential (stored encrypted, never shown)."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Optional: this provider's own key, stored encrypted and never shown again. "
        "Leave empty to keep the stored one; or use 'Api key env' to name an environment variable instead.",
    )

    class Meta:
        model = Provider
        fields = (
            "name",
            "tenant",
            "kind",
            "base_url",
            "api_key_env",
            "api_version",
            "region",
            "supports_responses",
            "extra_headers",
            "connect_timeout",
            "read_timeout",
            "total_timeout",
            "max_connections",
            "enabled",
        )


@admin.register(Provider)
class ProviderAdmin(GlobalConfigAdminMixin, admin.ModelAdmin):
    """Global configuration: superusers only (tenant admins are not given its permissions)."""

    list_display = (
        "name",
        "kind",
        "base_url",
        "api_key_env",
        "credential_set",
        "enabled",
        "health_status",
        "latency",
        "last_error",
        "checked_at",
        "circuits",
        "requests_24h",
        "errors_24h",
        "fallbacks_24h",
    )
    list_filter = ("kind", "enabled", "health__status")
    search_fields = ("name", "base_url")
    inlines = [ModelInline]
    form = ProviderForm

    def save_model(self, request: HttpRequest, obj: Provider, form: forms.ModelForm, change: bool) -> None:
        if form.cleaned_data.get("api_key"):
            obj.set_api_key(form.cleaned_data["api_key"])
        super().save_model(request, obj, form, change)

    actions = ("reset_circuits", "probe_now")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        return super().get_queryset(request).select_related("health").prefetch_related("models")

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """The changelist, with the page's 24 h usage counts attached in one query."""
        changelist = super().get_changelist_instance(request)
        page = list(changelist.result_list)  # evaluates (and caches) the page the template renders
        counts = usage_counts([p.name for p in page])
        for provider in page:
            provider.usage_counts = counts.get(provider.name, UsageCounts())  # type: ignore[attr-defined]
        return changelist

    @admin.display(boolean=True, description="credential set")
    def credential_set(self, obj: Provider) -> bool:
        return obj.has_credential

    @admin.display(description="health", ordering="health__status")
    def health_status(self, obj: Provider) -> SafeString:
        health = _health(obj)
        status = health.status if health else ProviderHealth.Status.UNKNOWN
        return _coloured(status, STATUS_COLOURS.get(status, "#757575"))

    @admin.display(description="latency (ms)", ordering="health__latency_ms")
    def latency(self, obj: Provider) -> int | None:
        health = _health(obj)
        return health.latency_ms if health else None

    @admin.display(description="last error")
    def last_error(self, obj: Provider) -> str:
        health = _health(obj)
        return health.last_error if health else ""

    @admin.display(description="checked at", ordering="health__checked_at")
    def checked_at(self, obj: Provider) -> object:
        health = _health(obj)
        return health.checked_at if health else None

    @admin.display(description="circuits")
    def circuits(self, obj: Provider) -> SafeString:
        states = [(model.name, circuit.state_of(model.name)) for model in obj.models.all()]
        rows = ((name, CIRCUIT_COLOURS.get(state, ""), state) for name, state in states)
        return format_html_join(", ", '{}: <span style="color: {}">{}</span>', rows)

    def _counts(self, obj: Provider) -> UsageCounts:
        # Attached per page by get_changelist_instance: never a query per row.
        return getattr(obj, "usage_counts", UsageCounts())

    @admin.display(description="requests 24 h")
    def requests_24h(self, obj: Provider) -> int:
        return self._counts(obj).requests

    @admin.display(description="errors 24 h")
    def errors_24h(self, obj: Provider) -> int:
        return self._counts(obj).errors

    @admin.display(description="fallbacks 24 h")
    def fallbacks_24h(self, obj: Provider) -> int:
        return self._counts(obj).fallbacks

    @admin.action(description="Reset circuits of the selected providers' models")
    def reset_circuits(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        names = list(Model.objects.filter(provider__in=queryset).values_list("name", flat=True))
        _reset_circuits(request, self, names)

    @admin.action(description="Run a health probe now")
    def probe_now(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        selected = list(queryset.values_list("pk", "enabled"))
        results = probes.probe_all(provider_ids=[pk for pk, _ in selected])
        for result in results:
            level = messages.SUCCESS if result.status == ProviderHealth.Status.HEALTHY else messages.WARNING
            latency = f" in {result.latency_ms} ms" if result.latency_ms is not None else ""
            error = f": {result.error}" if result.error else ""
            self.message_user(request, f"{result.provider}: {result.status}{latency}{error}", level)
        skipped = sum(1 for _, enabled in selected if not enabled)
        if skipped:
            self.message_user(request, f"Skipped {skipped} disabled provider(s).", messages.INFO)


@admin.register(Model)
class ModelAdmin(GlobalConfigAdminMixin, admin.ModelAdmin):
    tenant_admin_permissions = ("view",)  # tenant admins read model names and prices (allowed models, tiers)
    list_display = (
        "name",
        "provider",
        "upstream_model",
        "input_cost_per_million",
        "output_cost_per_million",
        "context_window",
        "enabled",
        "circuit_state",
    )
    list_filter = ("provider", "enabled")
    search_fields = ("name", "upstream_model")
    list_editable = ("enabled",)
    list_select_related = ("provider",)
    actions = ("reset_circuits",)

    @admin.display(description="circuit")
    def circuit_state(self, obj: Model) -> SafeString:
        state = circuit.state_of(obj.name)
        return _coloured(state, CIRCUIT_COLOURS.get(state, ""))

    @admin.action(description="Reset circuits of the selected models")
    def reset_circuits(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        _reset_circuits(request, self, list(queryset.values_list("name", flat=True)))

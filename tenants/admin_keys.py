"""Admin for API keys (tenant-scoped) and personal API tokens (each staff user's own)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.debug import sensitive_variables

from tenants import services, tokens
from tenants.admin_inlines import KeyBudgetInline
from tenants.admin_scoping import TenantScopedAdminMixin, is_platform_admin
from tenants.audit import audit_log
from tenants.models import ApiKey, PersonalToken, Tenant

# A new secret lives only on the request that created it, from save_model to the page that shows it.
_SECRET_ATTRIBUTE = "_issued_secret"


@sensitive_variables("secret")  # error reports must not carry it
def _secret_page(model_admin: admin.ModelAdmin, request: HttpRequest, obj: Model, secret: str) -> HttpResponse:
    """The one page that shows a new secret: the answer to the POST, never a message, never cached."""
    opts = obj._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": f"Copy the secret of “{obj}” now",
        "object": obj,
        "secret": secret,
        "change_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    response = TemplateResponse(request, "admin/tenants/secret_once.html", context)
    add_never_cache_headers(response)
    return response


class ShowSecretOnceMixin:
    """After adding a key or token, answer with the secret page instead of a message and a redirect.

    Django's messages travel in a signed (not encrypted) cookie or in the session
    table: neither may hold a secret.
    """

    def response_add(self, request: HttpRequest, obj: Model, post_url_continue: str | None = None) -> HttpResponse:
        secret = getattr(request, _SECRET_ATTRIBUTE, None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)  # type: ignore[misc]
        delattr(request, _SECRET_ATTRIBUTE)
        return _secret_page(self, request, obj, secret)  # type: ignore[arg-type]


STATUS_COLOURS = {"active": "#2e7d32", "expired": "#ef6c00", "revoked": "#c62828"}


def _status(revoked_at: object, expires_at: object) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= timezone.now():  # type: ignore[operator]
        return "expired"
    return "active"


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        match self.value():
            case "active":
                return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
            case "expired":
                return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
            case "revoked":
                return queryset.filter(revoked_at__isnull=False)
        return queryset


def _coloured_status(status: str) -> SafeString:
    return format_html('<span style="color: {}; font-weight: bold">{}</span>', STATUS_COLOURS[status], status)


@admin.register(ApiKey)
class ApiKeyAdmin(ShowSecretOnceMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "team",
        "tenant",
        "created_by",
        "status",
        "created_at",
        "last_used_at",
        "expires_at",
    )
    list_filter = (KeyStatusFilter, "team__tenant", "team")
    search_fields = ("name", "prefix", "team__slug", "team__tenant__slug", "created_by__username")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    autocomplete_fields = ("team",)
    list_select_related = ("team__tenant", "created_by")
    date_hierarchy = "created_at"
    inlines = [KeyBudgetInline]
    actions = ["revoke"]
    tenant_lookups = ("team__tenant",)
    tenant_admin_permissions = ("view", "add", "change")  # keys are revoked, not deleted: usage keeps its key

    @admin.display(description="tenant", ordering="team__tenant__slug")
    def tenant(self, obj: ApiKey) -> Tenant:
        return obj.team.tenant

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> SafeString:
        return _coloured_status(_status(obj.revoked_at, obj.expires_at))

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = services.api_key_create(
            team=obj.team,
            name=obj.name,
            created_by=request.user,  # type: ignore[arg-type]
            allowed_models=obj.allowed_models,
            expires_at=obj.expires_at,
            rpm_limit=obj.rpm_limit,
            tpm_limit=obj.tpm_limit,
        )
        obj.pk = issued.api_key.pk
        obj.prefix = issued.api_key.prefix
        obj.key_hash = issued.api_key.key_hash
        obj.created_at = issued.api_key.created_at
        obj.created_by = issued.api_key.created_by
        obj._state.adding = False  # the row exists: inlines (budgets) attach to it
        setattr(request, _SECRET_ATTRIBUTE, issued.secret)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=key)
            audit_log(request.user, key, "change", "Revoked the key.", via="admin action")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


@admin.register(PersonalToken)
class PersonalTokenAdmin(ShowSecretOnceMixin, admin.ModelAdmin):
    """Staff manage their own management-API tokens here; superusers also see (and revoke) everyone's."""

    list_display = ("name", "prefix", "user", "status", "created_at", "last_used_at", "expires_at")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "expires_at", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PersonalToken]:
        queryset = super().get_queryset(request)
        return queryset if is_platform_admin(request) else queryset.filter(user=request.user.pk)

    def _staff(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def _own(self, request: HttpRequest, obj: Model | None) -> bool:
        return obj is None or is_platform_admin(request) or getattr(obj, "user_id", None) == request.user.pk

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._staff(request) and self._own(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._staff(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._staff(request) and self._own(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._staff(request) and self._own(request, obj)

    @admin.display(description="status")
    def status(self, obj: PersonalToken) -> SafeString:
        return _coloured_status(_status(obj.revoked_at, obj.expires_at))

    def save_model(self, request: HttpRequest, obj: PersonalToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = tokens.personal_token_create(user=request.user, name=obj.name, expires_at=obj.expires_at)  # type: ignore[arg-type]
        obj.pk, obj.user, obj.prefix = issued.token.pk, issued.token.user, issued.token.prefix
        obj.token_hash, obj.created_at = issued.token.token_hash, issued.token.created_at
        obj._state.adding = False
        setattr(request, _SECRET_ATTRIBUTE, issued.secret)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalToken]) -> None:
        for token in queryset.filter(Q(revoked_at__isnull=True)):
            tokens.personal_token_revoke(token=token)
            audit_log(request.user, token, "change", "Revoked the token.", via="admin action")
        self.message_user(request, "Revoked the selected tokens.", messages.SUCCESS)

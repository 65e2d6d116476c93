from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants import services
from tenants.models import ApiKey, Membership, Team, Tenant


class TeamInline(admin.TabularInline):
    model = Team
    extra = 0
    fields = ("slug", "name")
    show_change_link = True


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "status", "timezone", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    inlines = [TeamInline]
    actions = ["suspend", "reactivate"]

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            tenant.status = Tenant.Status.SUSPENDED
            tenant.save(update_fields=["status", "updated_at"])

    @admin.action(description="Reactivate selected tenants")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            tenant.status = Tenant.Status.ACTIVE
            tenant.save(update_fields=["status", "updated_at"])


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # keys are created with a one-time secret: use the API key page


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "tenant", "created_at")
    list_filter = ("tenant",)
    search_fields = ("slug", "name", "tenant__slug")
    inlines = [MembershipInline, ApiKeyInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role", "team__tenant")
    search_fields = ("user__username", "team__slug")
    autocomplete_fields = ("user", "team")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "team", "created_by", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("team__tenant", "revoked_at")
    search_fields = ("name", "prefix", "team__slug", "team__tenant__slug")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at")
    autocomplete_fields = ("team",)
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)  # type: ignore[arg-type]
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
        messages.warning(
            request, f"The secret of '{obj.name}' is {issued.secret} — copy it now, it will not be shown again."
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            services.api_key_revoke(api_key=key)

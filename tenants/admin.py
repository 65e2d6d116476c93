"""Admin for tenants, teams, members and roles, scoped to the tenants a tenant admin administers.

API keys and personal tokens are in ``tenants.admin_keys`` (imported below).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from tenants import admin_group, permissions
from tenants.admin_inlines import ApiKeyInline, TeamBudgetInline, TenantBudgetInline
from tenants.admin_scoping import TenantScopedAdminMixin, TenantScopedInlineMixin, is_platform_admin
from tenants.audit import audit_log
from tenants.models import Membership, Team, Tenant, TenantRole


class UsernameField(forms.ModelChoiceField):
    """A user picked by exact username: tenant admins add people without browsing every account."""

    widget = forms.TextInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        kwargs.setdefault("help_text", "The person's exact username.")
        kwargs["to_field_name"] = "username"
        kwargs.pop("limit_choices_to", None)
        super().__init__(**kwargs)
        self.error_messages["invalid_choice"] = permissions.NOT_ADDABLE  # the same for no one and outsiders

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int):  # the initial value of an existing row is the user's id
            user = get_user_model().objects.filter(pk=value).first()
            return user.get_username() if user else ""
        return super().prepare_value(value)


def username_field(request: HttpRequest, db_field: Any) -> UsernameField | None:
    """For tenant admins, the ``user`` relation is typed as a username; superusers keep the usual picker."""
    if db_field.name == "user" and not is_platform_admin(request):
        # Only the people of the tenants they administer: a name elsewhere answers like no account.
        people = permissions.addable_users(request.user, permissions.administered_tenants(request.user))
        return UsernameField(queryset=people, required=not db_field.blank, label=db_field.verbose_name.capitalize())
    return None


class TeamInline(TenantScopedInlineMixin, admin.TabularInline):
    model = Team
    extra = 0
    fields = ("slug", "name")
    show_change_link = True


class TenantRoleInline(TenantScopedInlineMixin, admin.TabularInline):
    model = TenantRole
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    tenant_admin_permissions = ("view",)  # who administers a tenant is the platform's decision


class MembershipInline(TenantScopedInlineMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        return username_field(request, db_field) or super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- tenants --------------------------------------------------------------------------
@admin.register(Tenant)
class TenantAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("slug", "name", "status", "team_count", "key_count", "timezone", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    inlines = [TeamInline, TenantRoleInline, TenantBudgetInline]
    actions = ["suspend", "reactivate"]
    tenant_lookups = ("pk",)
    tenant_admin_permissions = ("view", "change")
    superuser_only_fields = ("slug", "status", "rpm_limit", "tpm_limit")  # the platform sets a tenant's limits

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return (
            super()
            .get_queryset(request)
            .annotate(_teams=Count("teams", distinct=True), _keys=Count("teams__api_keys", distinct=True))
        )

    @admin.display(description="teams", ordering="_teams")
    def team_count(self, obj: Tenant) -> int:
        return getattr(obj, "_teams", 0)

    @admin.display(description="API keys", ordering="_keys")
    def key_count(self, obj: Tenant) -> int:
        return getattr(obj, "_keys", 0)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Tenant], status: str, verb: str) -> None:
        changed = 0
        for tenant in queryset.exclude(status=status):
            tenant.status = status
            tenant.save(update_fields=["status", "updated_at"])
            audit_log(request.user, tenant, "change", f"{verb} the tenant.", via="admin action")
            changed += 1
        self.message_user(request, f"{verb} {changed} tenant(s).", messages.SUCCESS)

    @admin.action(description="Suspend selected tenants", permissions=["superuser"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_status(request, queryset, Tenant.Status.SUSPENDED, "Suspended")

    @admin.action(description="Reactivate selected tenants", permissions=["superuser"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_status(request, queryset, Tenant.Status.ACTIVE, "Reactivated")

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects + [o for o, _ in formset.changed_objects]:
            if isinstance(obj, TenantRole) and obj.role == TenantRole.Role.ADMIN:
                admin_group.enroll(obj.user)


@admin.register(TenantRole)
class TenantRoleAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__slug")
    autocomplete_fields = ("user", "tenant")
    list_select_related = ("user", "tenant")
    tenant_admin_permissions = ("view",)

    def save_model(self, request: HttpRequest, obj: TenantRole, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.role == TenantRole.Role.ADMIN:
            admin_group.enroll(obj.user)  # staff status and the group; rows stay scoped by the role


# --- teams and members ----------------------------------------------------------------
@admin.register(Team)
class TeamAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("slug", "name", "tenant", "member_count", "key_count", "rpm_limit", "tpm_limit", "created_at")
    list_filter = ("tenant",)
    search_fields = ("slug", "name", "tenant__slug", "tenant__name")
    list_select_related = ("tenant",)
    inlines = [MembershipInline, ApiKeyInline, TeamBudgetInline]
    tenant_lookups = ("tenant",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(_members=Count("memberships", distinct=True), _keys=Count("api_keys", distinct=True))
        )

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj: Team) -> int:
        return getattr(obj, "_members", 0)

    @admin.display(description="API keys", ordering="_keys")
    def key_count(self, obj: Team) -> int:
        return getattr(obj, "_keys", 0)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("team", "user", "role")


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user", "team", "tenant", "role", "created_at")
    list_filter = ("role", "team__tenant", "team")
    search_fields = ("user__username", "user__email", "team__slug", "team__name")
    autocomplete_fields = ("user", "team")
    list_select_related = ("user", "team__tenant")
    tenant_lookups = ("team__tenant",)

    @admin.display(description="tenant", ordering="team__tenant__slug")
    def tenant(self, obj: Membership) -> Tenant:
        return obj.team.tenant

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        return username_field(request, db_field) or super().formfield_for_foreignkey(db_field, request, **kwargs)


from tenants import admin_keys  # noqa: E402, F401  (registers the ApiKey and PersonalToken admins)

"""Inlines shared by the tenant, team and key admins (all tenant-scoped)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from billing.models import Budget
from tenants.admin_scoping import TenantScopedInlineMixin
from tenants.models import ApiKey


class BudgetInline(TenantScopedInlineMixin, admin.TabularInline):
    model = Budget
    extra = 0
    fields = ("amount_usd", "period", "action")


class TenantBudgetInline(BudgetInline):
    fk_name = "tenant"


class TeamBudgetInline(BudgetInline):
    fk_name = "team"


class KeyBudgetInline(BudgetInline):
    fk_name = "api_key"


class ApiKeyInline(TenantScopedInlineMixin, admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_by", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    show_change_link = True
    can_delete = False
    tenant_admin_permissions = ("view", "add", "change")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # keys are created with a one-time secret: use the API key page

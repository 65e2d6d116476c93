"""Tenant scoping for Django admin classes: a tenant admin sees and selects only their tenants' rows.

Superusers see everything. A tenant admin (a staff user with a ``TenantRole.ADMIN``
and the "Tenant admins" group, see ``tenants.admin_group``) sees only rows whose
tenant they administer, everywhere the admin shows rows: change lists, change
and delete pages (a foreign id is "not found"), history, actions (which run on
the scoped queryset), foreign-key and many-to-many choices (also behind
autocomplete, which asks the target's admin), inlines and list filters. Any
other staff user sees nothing in a scoped admin, whatever model permissions
they hold.

Use it on every admin of a model that belongs to a tenant::

    @admin.register(Tier)
    class TierAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
        tenant_lookups = ("tenant",)      # ORM path(s) from the model to its Tenant
        global_rows_readonly = True        # tenant=NULL rows are global: read-only

and :class:`TenantScopedInlineMixin` on their inlines. The "Tenant admins"
group is given exactly the permissions these admins declare
(``tenant_admin_permissions``), so a model's admin must adopt the mixin before
tenant admins can open it at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.db.models import Model, Q, QuerySet
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import HttpRequest

from tenants.models import Tenant
from tenants.permissions import administered_tenants

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin
    _InlineBase = admin.options.InlineModelAdmin
else:
    _ModelAdminBase = object
    _InlineBase = object

ALL_PERMISSIONS: tuple[str, ...] = ("view", "add", "change", "delete")


def is_platform_admin(request: HttpRequest) -> bool:
    """Superusers: the platform's own administrators."""
    user = request.user
    return bool(user.is_active and user.is_superuser)


def request_tenants(request: HttpRequest) -> QuerySet[Tenant]:
    """The tenants ``request.user`` administers (memoised on the request)."""
    cached = getattr(request, "_administered_tenant_ids", None)
    if cached is None:
        cached = list(administered_tenants(request.user).values_list("pk", flat=True))
        request._administered_tenant_ids = cached  # type: ignore[attr-defined]
    return Tenant.objects.filter(pk__in=cached)


def _has_tenants(request: HttpRequest) -> bool:
    return request_tenants(request).exists()


def scoped_related_queryset(site: admin.AdminSite, request: HttpRequest, model: type[Model]) -> QuerySet | None:
    """Choices a tenant admin may pick for a relation to ``model``; None when ``model`` is not tenant data."""
    if model is Tenant:
        return request_tenants(request)
    related_admin = site._registry.get(model)
    if isinstance(related_admin, TenantScopedAdminMixin):
        return related_admin.get_queryset(request)
    return None


class TenantScopedAdminMixin(_ModelAdminBase):
    """Scopes a ``ModelAdmin`` to the tenants the signed-in user administers (see the module docstring)."""

    #: ORM paths from this model to its ``Tenant`` ("pk" for Tenant itself); a row is in scope if any matches.
    tenant_lookups: tuple[str, ...] = ("tenant",)
    #: Rows whose (first) tenant lookup is NULL are global configuration: tenant admins may only read them.
    global_rows_readonly: bool = False
    #: What the "Tenant admins" group may do with this model (inside its tenants).
    tenant_admin_permissions: tuple[str, ...] = ALL_PERMISSIONS
    #: Fields tenant admins see read-only (e.g. a tenant's status).
    superuser_only_fields: tuple[str, ...] = ()

    # --- rows ------------------------------------------------------------------------
    def tenant_q(self, request: HttpRequest) -> Q:
        """The filter selecting rows of the user's tenants (and global rows, when readable)."""
        tenants = request_tenants(request)
        q = Q()
        for lookup in self.tenant_lookups:
            q |= Q(**{f"{lookup}__in": tenants})
        if self.global_rows_readonly:
            q |= Q(**{f"{self.tenant_lookups[0]}__isnull": True})
        return q

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if is_platform_admin(request):
            return queryset
        return queryset.filter(self.tenant_q(request))

    def is_global_row(self, obj: Model | None) -> bool:
        """True for a global (tenant-less) row of a model with tenant overrides."""
        if obj is None or not self.global_rows_readonly:
            return False
        field = self.tenant_lookups[0].split("__", 1)[0]
        return getattr(obj, f"{field}_id", None) is None

    def in_scope(self, request: HttpRequest, obj: Model | None) -> bool:
        """Whether ``obj`` is one of the rows this user may see here (memoised per request)."""
        if obj is None or obj.pk is None or is_platform_admin(request):
            return True
        memo: dict[tuple[str, Any], bool] = request.__dict__.setdefault("_tenant_scope_memo", {})
        key = (obj._meta.label, obj.pk)
        if key not in memo:
            memo[key] = self.get_queryset(request).filter(pk=obj.pk).exists()
        return memo[key]

    # --- permissions -----------------------------------------------------------------
    def has_superuser_permission(self, request: HttpRequest) -> bool:
        """For ``@admin.action(permissions=["superuser"])``: actions only the platform may run."""
        return is_platform_admin(request)

    def _may_reach(self, request: HttpRequest) -> bool:
        return is_platform_admin(request) or _has_tenants(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) and self._may_reach(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_view_permission(request, obj) and self._may_reach(request) and self.in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and self._may_reach(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_write(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_write(request, obj) and super().has_delete_permission(request, obj)

    def _may_write(self, request: HttpRequest, obj: Model | None) -> bool:
        if is_platform_admin(request):
            return True
        return _has_tenants(request) and not self.is_global_row(obj) and self.in_scope(request, obj)

    # --- forms -----------------------------------------------------------------------
    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if is_platform_admin(request):
            return fields
        return fields + tuple(f for f in self.superuser_only_fields if f not in fields)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> ModelChoiceField | None:
        if not is_platform_admin(request) and "queryset" not in kwargs:
            queryset = scoped_related_queryset(self.admin_site, request, db_field.remote_field.model)
            if queryset is not None:
                kwargs["queryset"] = queryset
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if (
            field is not None
            and not is_platform_admin(request)
            and self.global_rows_readonly
            and db_field.name == self.tenant_lookups[0]
        ):
            field.required = True  # tenant admins create overrides for their tenant, never global rows
        return field

    def formfield_for_manytomany(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        if not is_platform_admin(request) and "queryset" not in kwargs:
            queryset = scoped_related_queryset(self.admin_site, request, db_field.remote_field.model)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- change list -----------------------------------------------------------------
    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        if self.global_rows_readonly and not is_platform_admin(request):
            # In-list editing would reach the global rows shown beside the tenant's own.
            changelist.list_editable = ()
        return changelist

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Relation filters list only values present in the scoped rows (never other tenants' names)."""
        filters = super().get_list_filter(request)
        if is_platform_admin(request):
            return filters
        return tuple(_related_only(self.model, entry) for entry in filters)


def _related_only(model: type[Model], entry: Any) -> Any:
    if not isinstance(entry, str):
        return entry  # (field, FilterClass) pairs and SimpleListFilters choose their own choices
    from django.contrib.admin.utils import get_fields_from_path

    field = get_fields_from_path(model, entry)[-1]
    return (entry, RelatedOnlyFieldListFilter) if field.is_relation else entry


class TenantScopedInlineMixin(_InlineBase):
    """Scopes an inline's choices, and keeps it read-only under a global row, for tenant admins."""

    tenant_admin_permissions: tuple[str, ...] = ALL_PERMISSIONS

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> ModelChoiceField | None:
        if not is_platform_admin(request) and "queryset" not in kwargs:
            queryset = scoped_related_queryset(self.admin_site, request, db_field.remote_field.model)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _parent_read_only(self, request: HttpRequest, obj: Model | None) -> bool:
        parent_admin = self.admin_site._registry.get(self.parent_model)
        return (
            not is_platform_admin(request)
            and isinstance(parent_admin, TenantScopedAdminMixin)
            and parent_admin.is_global_row(obj)
        )

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return not self._parent_read_only(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return not self._parent_read_only(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return not self._parent_read_only(request, obj) and super().has_delete_permission(request, obj)


class GlobalConfigAdminMixin(_ModelAdminBase):
    """Global configuration (providers, models): only superusers change it or run its actions.

    Other staff may read it if their model permissions allow; the "Tenant admins"
    group gets only what ``tenant_admin_permissions`` lists (at most "view").
    """

    #: "view" lets tenant admins read this configuration (e.g. model names and prices); empty hides it.
    tenant_admin_permissions: tuple[str, ...] = ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_platform_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_platform_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_platform_admin(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return super().get_actions(request) if is_platform_admin(request) else {}

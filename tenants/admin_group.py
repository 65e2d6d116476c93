"""The "Tenant admins" group: the model permissions a tenant admin needs in ``/admin/``.

The group is managed by code: its permissions are exactly what the tenant-scoped
admins declare (``TenantScopedAdminMixin.tenant_admin_permissions`` and the same
attribute on their ``TenantScopedInlineMixin`` inlines), plus "view" on global
configuration whose ``GlobalConfigAdminMixin`` admin opts in, so no admin that
leaks other tenants' rows can be opened by a tenant admin. It is brought up to date
after every ``migrate`` (a ``post_migrate`` hook) and by
``manage.py ensure_tenant_admin_group``; extra permissions belong in another group.
Rows are still scoped by ``TenantRole`` — the group only opens the doors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

logger = logging.getLogger(__name__)

TENANT_ADMIN_GROUP = "Tenant admins"


def declared_permissions(site: admin.AdminSite | None = None) -> set[tuple[str, str]]:
    """(app_label, codename) of every permission the tenant-scoped admins of ``site`` declare."""
    from tenants.admin_scoping import GlobalConfigAdminMixin, TenantScopedAdminMixin, TenantScopedInlineMixin

    site = site or admin.site
    wanted: set[tuple[str, str]] = set()
    for model, model_admin in site._registry.items():
        opts = model._meta
        if isinstance(model_admin, GlobalConfigAdminMixin):  # read-only at most, whatever else it declares
            if "view" in model_admin.tenant_admin_permissions:
                wanted.add((opts.app_label, f"view_{opts.model_name}"))
            continue
        if not isinstance(model_admin, TenantScopedAdminMixin):
            continue
        wanted |= {(opts.app_label, f"{action}_{opts.model_name}") for action in model_admin.tenant_admin_permissions}
        for inline in model_admin.inlines:
            if issubclass(inline, TenantScopedInlineMixin):
                inline_opts = inline.model._meta
                wanted |= {
                    (inline_opts.app_label, f"{action}_{inline_opts.model_name}")
                    for action in inline.tenant_admin_permissions
                }
    return wanted


@transaction.atomic
def ensure_tenant_admin_group(using: str = "default") -> Group:
    """Create or update the group so it holds exactly the declared permissions (idempotent)."""
    for app_config in apps.get_app_configs():  # permissions of apps migrated after this one may not exist yet
        create_permissions(app_config, verbosity=0, using=using)
    wanted = declared_permissions()
    group, _ = Group.objects.using(using).get_or_create(name=TENANT_ADMIN_GROUP)
    permissions = [
        p
        for p in Permission.objects.using(using).select_related("content_type")
        if (p.content_type.app_label, p.codename) in wanted
    ]
    group.permissions.set(permissions)
    return group


def on_post_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate`` hook (connected for the tenants app only)."""
    ensure_tenant_admin_group(using=using)


def enroll(user: AbstractBaseUser) -> None:
    """Let a tenant admin into ``/admin/``: staff status and the group (their rows come from TenantRole)."""
    group = Group.objects.filter(name=TENANT_ADMIN_GROUP).first() or ensure_tenant_admin_group()
    if not getattr(user, "is_staff", False):
        user.is_staff = True  # type: ignore[attr-defined]
        user.save(update_fields=["is_staff"])
    user.groups.add(group)  # type: ignore[attr-defined]

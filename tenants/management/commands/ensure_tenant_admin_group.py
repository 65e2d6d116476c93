"""``ensure_tenant_admin_group``: create or update the "Tenant admins" group (also runs after migrate)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants.admin_group import ensure_tenant_admin_group


class Command(BaseCommand):
    help = (
        'Create the "Tenant admins" group, or reset its permissions to what the tenant-scoped admins declare. '
        "Idempotent; migrate does the same."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        group = ensure_tenant_admin_group()
        self.stdout.write(f"Group '{group.name}' holds {group.permissions.count()} permissions.")

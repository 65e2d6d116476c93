from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants, teams and API keys"

    def ready(self) -> None:
        from gateway_platform.config import snapshot
        from gateway_platform.config import version as config_version
        from tenants import admin_group, key_info

        snapshot.register_key_loader(key_info.load_key_info)
        config_version.watch("tenants.Tenant", "tenants.Team", "tenants.ApiKey")
        # Keep the "Tenant admins" group's permissions in step with the scoped admins.
        post_migrate.connect(admin_group.on_post_migrate, sender=self, dispatch_uid="tenants.admin_group")

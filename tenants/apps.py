from __future__ import annotations

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants, teams and API keys"

    def ready(self) -> None:
        from routing import config_version

        config_version.watch("tenants.Tenant", "tenants.Team", "tenants.ApiKey")

from __future__ import annotations

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers and models"

    def ready(self) -> None:
        from gateway_platform.config import version as config_version

        config_version.watch("providers.Provider", "providers.Model")

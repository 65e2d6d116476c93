from __future__ import annotations

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from routing import config_version, policies

        config_version.watch(
            "routing.Tier", "routing.TierModel", "routing.RoutingPolicy", "routing.Skill", "routing.GuardrailPolicy"
        )
        policies.register()

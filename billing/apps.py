from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Usage and billing"

    def ready(self) -> None:
        from billing import limits
        from gateway_platform.config import version as config_version

        config_version.watch("billing.Budget", "billing.KeyModelLimit")
        from django.core import checks

        from gateway_platform.redis_durability import check_redis_durability

        checks.register(check_redis_durability, checks.Tags.database)  # migrate and `check --database`
        limits.register()

from __future__ import annotations

from django.apps import AppConfig


class CachingConfig(AppConfig):
    name = "caching"
    verbose_name = "Response cache"

    def ready(self) -> None:
        from caching import config_section, policy
        from gateway_platform.config import version as config_version

        config_version.watch("caching.CachePolicy")
        policy.register()
        config_section.register()

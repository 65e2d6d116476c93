from __future__ import annotations

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from gateway_platform.config import snapshot
        from gateway_platform.config import version as config_version
        from routing import aliases, catalog, policies, skills, tier_views
        from routing.aliases import section as aliases_section

        snapshot.register_catalog_loader(catalog.load_catalog)

        config_version.watch(
            "routing.Tier",
            "routing.TierModel",
            "routing.RoutingPolicy",
            "routing.Skill",
            "routing.GuardrailPolicy",
            "routing.ModelAlias",
        )
        policies.register()
        tier_views.register()
        skills.register()
        aliases.register()
        aliases_section.register()
        _register_cascade_and_guardrail()


def _register_cascade_and_guardrail() -> None:
    """Cascade outcomes are written by the usage drain; ``security:`` / ``mcp:`` config sections apply."""
    from billing import usage
    from routing import outcomes, policy_sections

    usage.register_record_writer(outcomes.write_outcomes)
    policy_sections.register()

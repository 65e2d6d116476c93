"""The routing catalogue the configuration snapshot holds: providers, models, global tiers, local fallback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway_platform.config.snapshot import TierInfo
from providers.adapters.base import Deployment
from providers.credentials import provider_config
from providers.models import Model, Provider
from routing.balancing import balance_of
from routing.models import RoutingPolicy, Tier

if TYPE_CHECKING:
    from gateway_platform.config.snapshot import Catalog


def load_catalog() -> Catalog:
    """Load enabled providers, models and global tiers, and the local fallback (synchronous)."""
    providers = {p.name: provider_config(p) for p in Provider.objects.filter(enabled=True)}
    models: dict[str, Deployment] = {}
    for m in Model.objects.filter(enabled=True, provider__enabled=True).select_related("provider"):
        models[m.name] = Deployment(
            model_id=m.pk,
            name=m.name,
            upstream_model=m.upstream_model,
            provider=providers[m.provider.name],
            input_cost_per_million=m.input_cost_per_million,
            output_cost_per_million=m.output_cost_per_million,
            context_window=m.context_window,
            max_output_tokens=m.max_output_tokens,
            cache_read_cost_per_million=m.cache_read_cost_per_million,
            cache_write_cost_per_million=m.cache_write_cost_per_million,
        )
    tiers: dict[str, TierInfo] = {}
    for tier in Tier.objects.filter(enabled=True, tenant=None).prefetch_related("tier_models__model"):
        members = [tm for tm in tier.tier_models.all() if tm.model.name in models]
        deployments = tuple(models[tm.model.name] for tm in members)
        tiers[tier.name] = TierInfo(
            id=tier.pk,
            name=tier.name,
            description=tier.description,
            capabilities=tuple(tier.capabilities),
            deployments=deployments,
            complexity_max=tier.complexity_max,
            max_output_tokens=tier.max_output_tokens,
            max_cost_per_million=tier.max_cost_per_million,
            balance=balance_of(tier.balancing, [(tm.model.name, tm.position, tm.weight) for tm in members]),
        )
    policy = RoutingPolicy.objects.filter(tenant__isnull=True).select_related("fallback_model").first()
    fallback = None
    if policy and policy.fallback_enabled and policy.fallback_model:
        fallback = models.get(policy.fallback_model.name)
    return models, tiers, providers, fallback

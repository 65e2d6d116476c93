"""The configuration a fault run bills against: models with distinct upstream names, a cascade, a budget."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

# public name -> (upstream model, input USD per million, output USD per million)
MODELS = {
    "ledger-std": ("ledger-std-up", "2", "8"),
    "ledger-cheap": ("ledger-cheap-up", "0.5", "1"),
    "ledger-strong": ("ledger-strong-up", "5", "20"),
}
LIGHT_TIER = "ledger-light"
HEAVY_TIER = "ledger-heavy"


@dataclass(frozen=True)
class World:
    """What the load and the checks need to know about the run's configuration."""

    secret: str  # a key whose tenant has the cascade on
    budget_secret: str  # a key under a small budget
    key_ids: tuple[int, ...]
    budget_key_id: int
    budget_usd: Decimal
    tenant_ids: tuple[int, ...]


def create_world(mock_url: str, *, budget_usd: str = "0.002") -> World:
    """Create the providers, models, tiers, tenants, keys and budget of a run (names unique per run)."""
    from billing.models import Budget
    from caching.models import CachePolicy
    from providers.models import Model, Provider
    from routing.models import RoutingPolicy, Tier, TierModel
    from tenants.services import api_key_create, team_get_or_create

    run = uuid.uuid4().hex[:6]
    provider = Provider.objects.create(name=f"ledger-mock-{run}", kind="openai", base_url=f"{mock_url}/v1")
    models = {
        name: Model.objects.create(
            name=name,
            provider=provider,
            upstream_model=upstream,
            input_cost_per_million=Decimal(price_in),
            output_cost_per_million=Decimal(price_out),
        )
        for name, (upstream, price_in, price_out) in MODELS.items()
    }
    for tier_name, model_name, band in ((LIGHT_TIER, "ledger-cheap", 0.35), (HEAVY_TIER, "ledger-strong", 1.0)):
        tier = Tier.objects.create(name=tier_name, complexity_max=band)
        TierModel.objects.create(tier=tier, model=models[model_name], position=0)
    team = team_get_or_create(tenant_slug=f"ledger-a-{run}", team_slug="core")
    RoutingPolicy.objects.create(tenant=team.tenant, cascade_enabled=True, cascade_quality_threshold=0.6)
    # The exact response cache only: a repeated question is answered without an upstream call.
    CachePolicy.objects.create(tenant=team.tenant, semantic_enabled=False)
    key = api_key_create(team=team, name="load")
    budget_team = team_get_or_create(tenant_slug=f"ledger-b-{run}", team_slug="core")
    budget_key = api_key_create(team=budget_team, name="budgeted")
    budget = Budget(amount_usd=Decimal(budget_usd), api_key=budget_key.api_key)
    budget.full_clean()
    budget.save()
    return World(
        secret=key.secret,
        budget_secret=budget_key.secret,
        key_ids=(key.api_key.pk, budget_key.api_key.pk),
        budget_key_id=budget_key.api_key.pk,
        budget_usd=budget.amount_usd,
        tenant_ids=(team.tenant_id, budget_team.tenant_id),
    )

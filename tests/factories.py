"""Typed factories for test data (plain functions over the real models)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from billing.models import Budget
from providers.models import Model, Provider
from routing.models import Tier, TierModel
from tenants.models import ApiKey, Team
from tenants.services import api_key_create, team_get_or_create

_seq = itertools.count(1)


def make_provider(base_url: str, *, kind: str = "openai", name: str | None = None, **fields: object) -> Provider:
    return Provider.objects.create(name=name or f"prov-{next(_seq)}", kind=kind, base_url=base_url, **fields)


def make_model(
    provider: Provider,
    *,
    name: str | None = None,
    upstream_model: str = "mock-model",
    input_cost: str = "1.0",
    output_cost: str = "2.0",
    **fields: object,
) -> Model:
    return Model.objects.create(
        name=name or f"model-{next(_seq)}",
        provider=provider,
        upstream_model=upstream_model,
        input_cost_per_million=Decimal(input_cost),
        output_cost_per_million=Decimal(output_cost),
        **fields,
    )


def make_tier(name: str, models: list[Model], **fields: object) -> Tier:
    tier = Tier.objects.create(name=name, **fields)
    for position, model in enumerate(models):
        TierModel.objects.create(tier=tier, model=model, position=position)
    return tier


def make_team(tenant: str | None = None, team: str = "core") -> Team:
    return team_get_or_create(tenant_slug=tenant or f"tenant-{next(_seq)}", team_slug=team)


def make_key(team: Team | None = None, **fields: object) -> tuple[ApiKey, str]:
    issued = api_key_create(team=team or make_team(), name=f"key-{next(_seq)}", **fields)  # type: ignore[arg-type]
    return issued.api_key, issued.secret


def make_budget(amount_usd: str, **fields: object) -> Budget:
    """A budget on exactly one of ``api_key=``, ``team=`` or ``tenant=``."""
    budget = Budget(amount_usd=Decimal(amount_usd), **fields)
    budget.full_clean()
    budget.save()
    return budget

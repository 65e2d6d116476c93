"""The gateway's side of the peer benchmark: one provider on the mock upstream, tiers, keys, cache policies.

Three tenants, so one running server can be measured in three configurations
without a restart:

- ``pipeline``: a key with a monthly budget and RPM/TPM limits (far above what
  the benchmark sends), the exact cache layer on (Redis lookup; a miss stores
  the answer) and the semantic layer off, a plain tier as the model. Every
  request also writes its usage record to the Redis stream.
- ``auto``: the same, with ``model: "auto"`` over three banded tiers.
- ``semantic``: the same as ``pipeline`` with the semantic layer on (the local
  all-MiniLM-L6-v2 embedder, pgvector lookup), so a miss embeds the prompt.

Prompts are unique per request (see ``wrk.lua``), so every cache lookup misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PROVIDER = "peers-mock"
MODEL = "peers-model"
TIER = "peers-tier"
UPSTREAM_MODEL = "mock-gpt"
BANDS = (("peers-light", 0.35), ("peers-standard", 0.65), ("peers-heavy", 1.0))
BUDGET_USD = Decimal("1000000")
RPM_LIMIT = 100_000_000
TPM_LIMIT = 1_000_000_000


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    """The secret of each tenant's key, by configuration name."""

    pipeline: str
    auto: str
    semantic: str


def tenant_key(tenant: str, *, semantic: bool, cache: bool = True) -> str:
    from caching.models import CachePolicy
    from tests.factories import make_key, make_team

    team = make_team(tenant=tenant, team="bench")
    CachePolicy.objects.create(
        tenant=team.tenant,
        enabled=cache,
        semantic_enabled=semantic,
        embedder=CachePolicy.Embedder.LOCAL if semantic else CachePolicy.Embedder.NONE,
    )
    _, secret = make_key(team, rpm_limit=RPM_LIMIT, tpm_limit=TPM_LIMIT, budget_usd=BUDGET_USD)
    return secret


def create(mock_url: str) -> GatewayKeys:
    """Provider, model and tiers on ``mock_url``; one key per configuration."""
    from tests.factories import make_model, make_provider, make_tier

    provider = make_provider(f"{mock_url}/v1", kind="openai", name=PROVIDER)
    model = make_model(provider, name=MODEL, upstream_model=UPSTREAM_MODEL)
    make_tier(TIER, [model])
    for name, edge in BANDS:
        make_tier(name, [model], complexity_max=edge)
    return GatewayKeys(
        pipeline=tenant_key("peers-pipeline", semantic=False),
        auto=tenant_key("peers-auto", semantic=False),
        semantic=tenant_key("peers-semantic", semantic=True),
    )


def semantic_available() -> bool:
    """Whether the local embedder's packages are installed (``requirements/embeddings.txt``)."""
    from caching.embedders import local

    return local.available()

"""In-memory snapshots for unit tests of routing decisions (no database, no Redis)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from gateway_platform.config.snapshot import KeyInfo, Snapshot, TierInfo
from providers.adapters.base import Deployment, ProviderConfig
from serving.exchange import Exchange
from serving.requests import ChatRequest, parse_chat_request

PROVIDER = ProviderConfig(
    id=1,
    name="mockai",
    kind="openai",
    base_url="http://127.0.0.1:9/v1",
    api_key=None,
    connect_timeout=1,
    read_timeout=1,
    total_timeout=1,
    max_connections=1,
)
SEEDED_CAPABILITIES = {
    "simple_ops": ("file_ops", "grep", "basic_parsing"),
    "code_gen": ("script_generation", "refactoring", "debugging"),
    "complex_reasoning": ("architecture", "multi_step_planning", "complex_logic"),
}
SEEDED_BANDS = {"simple_ops": 0.35, "code_gen": 0.65, "complex_reasoning": 1.0}


def deployment(name: str, model_id: int = 1, cost: str = "1") -> Deployment:
    return Deployment(
        model_id=model_id,
        name=name,
        upstream_model=name,
        provider=PROVIDER,
        input_cost_per_million=Decimal(cost),
        output_cost_per_million=Decimal(cost),
        context_window=100_000,
        max_output_tokens=None,
    )


MODELS = {
    "cheap-model": deployment("cheap-model", 1, "0.3"),
    "mid-model": deployment("mid-model", 2, "3"),
    "premium-model": deployment("premium-model", 3, "5"),
    "local-model": deployment("local-model", 4, "0"),
}
TIER_MODELS = {"simple_ops": "cheap-model", "code_gen": "mid-model", "complex_reasoning": "premium-model"}


def seeded_tiers(*, bands: bool = True) -> dict[str, TierInfo]:
    """The three seeded tiers over the in-memory models."""
    return {
        name: TierInfo(
            id=index,
            name=name,
            description="",
            capabilities=SEEDED_CAPABILITIES[name],
            deployments=(MODELS[TIER_MODELS[name]],),
            complexity_max=SEEDED_BANDS[name] if bands else None,
        )
        for index, name in enumerate(SEEDED_BANDS, start=1)
    }


def snapshot(
    tiers: dict[str, TierInfo] | None = None,
    *,
    extensions: dict[str, Any] | None = None,
    local_fallback: Deployment | None = None,
) -> Snapshot:
    return Snapshot(
        version=1,
        models=MODELS,
        tiers=seeded_tiers() if tiers is None else tiers,
        providers={PROVIDER.name: PROVIDER},
        local_fallback=local_fallback,
        extensions=extensions or {},
    )


def key(*allowed: str, tenant_id: int = 1) -> KeyInfo:
    return KeyInfo(
        id=1,
        name="k",
        prefix="gw-test",
        team_id=1,
        team_slug="core",
        tenant_id=tenant_id,
        tenant_slug="acme",
        tenant_active=True,
        allowed_models=frozenset(allowed),
        expires_at=None,
        revoked=False,
        rpm_limit=None,
        tpm_limit=None,
    )


def exchange(**headers: str) -> Exchange:
    """An exchange with these request headers (``x_gateway_skill="..."`` → ``x-gateway-skill``)."""
    raw = {name.replace("_", "-").encode(): value.encode() for name, value in headers.items()}
    return Exchange(request_id="req-test-0001", endpoint="chat.completions", request_headers=raw)


def chat(text: str, *, model: str = "auto", system: str | None = None, **extra: Any) -> ChatRequest:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return parse_chat_request(orjson.dumps({"model": model, "messages": messages, **extra}))

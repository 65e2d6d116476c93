"""Requests- and tokens-per-minute limits per key, team, tenant and per model on a key.

Each limit is a sliding-window counter in Redis shared by every process: the
current minute's count plus the previous minute's weighted by how much of it
still lies in the window. ``billing.enforcement`` checks and charges all of a
request's limits (and reserves its budgets) in one Lua call against Redis's
own clock; this module only says which limits a request is subject to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from billing.limits import Limits, RateLimits
from gateway_platform.config.snapshot import KeyInfo

WINDOW_SECONDS = 60
REQUESTS = "requests"
TOKENS = "tokens"


@dataclass(frozen=True, slots=True)
class Limit:
    """One counter a request is charged against."""

    name: str  # Redis base name, e.g. "key:42:tpm"
    limit: int  # per minute; 0 = unlimited
    cost: int  # what this request charges now (1 request, or its prompt tokens)
    unit: str = REQUESTS  # REQUESTS or TOKENS
    label: str = ""  # for messages: "API key 'laptop'"

    def describe(self) -> str:
        return f"{self.label} ({self.limit} {self.unit} per minute)"


def _pair(base: str, label: str, limits: RateLimits, prompt_tokens: int) -> list[Limit]:
    out = []
    if limits.rpm:
        out.append(Limit(f"{base}:rpm", limits.rpm, 1, REQUESTS, label))
    if limits.tpm:
        out.append(Limit(f"{base}:tpm", limits.tpm, prompt_tokens, TOKENS, label))
    return out


def limits_for(
    key: KeyInfo,
    limits: Limits,
    model_names: frozenset[str],
    *,
    prompt_tokens: int,
    default_rpm: int,
    default_tpm: int,
) -> list[Limit]:
    """Every limit a request of ``key`` that may be served by ``model_names`` is subject to.

    The key's own limits (or the defaults), its team's and tenant's (shared by
    all their keys), and the key's per-model limits for any model the request
    may be served by.
    """
    own = RateLimits(key.rpm_limit or default_rpm, key.tpm_limit or default_tpm)
    out = _pair(f"key:{key.id}", f"API key '{key.name}'", own, prompt_tokens)
    team = limits.team_limits.get(key.team_id)
    if team is not None:
        out += _pair(f"team:{key.team_id}", f"team '{key.tenant_slug}/{key.team_slug}'", team, prompt_tokens)
    tenant = limits.tenant_limits.get(key.tenant_id)
    if tenant is not None:
        out += _pair(f"tenant:{key.tenant_id}", f"tenant '{key.tenant_slug}'", tenant, prompt_tokens)
    for model, model_limits in sorted(limits.model_limits.get(key.id, {}).items()):
        if model in model_names:
            label = f"API key '{key.name}' on model '{model}'"
            out += _pair(f"key:{key.id}:model:{model}", label, model_limits, prompt_tokens)
    return out


def headers(limits: Sequence[Limit], remaining: Sequence[int]) -> dict[str, str]:
    """``x-ratelimit-*`` headers for the tightest request and token limit."""
    out: dict[str, str] = {}
    for unit in (REQUESTS, TOKENS):
        pairs = [(left, limit) for limit, left in zip(limits, remaining, strict=False) if limit.unit == unit]
        if pairs:
            left, limit = min(pairs, key=lambda pair: pair[0])
            out[f"x-ratelimit-limit-{unit}"] = str(limit.limit)
            out[f"x-ratelimit-remaining-{unit}"] = str(left)
    return out

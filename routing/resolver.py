"""Resolve the ``model`` a client asked for into an ordered list of deployments.

``model`` may be a concrete public model name, a tier name (as the key's
tenant sees its tiers: ``routing.tier_views``), ``auto``, or
``provider:model`` / ``local:model`` (``local`` is the provider of the global
local fallback). A tier's models come first (primary, then fallbacks); the
local fallback, when enabled, is tried last.

``auto`` is scored per request by the chat flow (``serving.route_plan``);
resolved here without a request (other endpoints, token counting, smart
routing off) it is the middle of the bands the key may use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway_platform.config.snapshot import Balance, KeyInfo, Snapshot, TierInfo
from gateway_platform.errors import invalid_request
from providers.adapters.base import Deployment
from routing import balancing
from routing.aliases import visible_aliases
from routing.scoring import NoTierAllowed
from routing.tier_views import TierView, tiers_for

LOCAL_PROVIDER_ALIAS = "local"
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Route:
    requested: str
    tier: str | None
    deployments: tuple[Deployment, ...]
    # Tier positions shared by several deployments; ordered when ``picks`` is set (``weighted`` by the
    # resolver, ``least-busy`` / ``latency`` by failover from Redis statistics).
    balance: Balance | None = None
    # How shared positions were ordered (``routing.balancing``), for the route reason.
    picks: tuple[balancing.Pick, ...] = ()


def usable(deployment: Deployment, key: KeyInfo) -> bool:
    """A tenant's own provider serves only that tenant's requests; platform providers serve everyone."""
    owner = deployment.provider.tenant_id
    return owner is None or owner == key.tenant_id


def _with_fallback(snapshot: Snapshot, deployments: tuple[Deployment, ...]) -> tuple[Deployment, ...]:
    fallback = snapshot.local_fallback
    if fallback is None or fallback in deployments:
        return deployments
    return (*deployments, fallback)


def _explicit(snapshot: Snapshot, key: KeyInfo, provider_name: str, model_name: str, requested: str) -> Route:
    if provider_name == LOCAL_PROVIDER_ALIAS:
        if snapshot.local_fallback is None:
            raise invalid_request("No local provider is configured.", param="model", code="model_not_found")
        provider_name = snapshot.local_fallback.provider.name
    candidates = [
        d
        for d in snapshot.models.values()
        if d.provider.name == provider_name
        and model_name in (d.name, d.upstream_model)
        and key.may_use(d.name)
        and usable(d, key)
    ]
    if not candidates:
        allowed = sorted(
            d.name
            for d in snapshot.models.values()
            if d.provider.name == provider_name and key.may_use(d.name) and usable(d, key)
        )
        hint = f" Models available from '{provider_name}': {', '.join(allowed)}." if allowed else ""
        raise invalid_request(
            f"The model '{requested}' does not exist or you do not have access to it.{hint}",
            param="model",
            code="model_not_found",
        )
    return Route(requested=requested, tier=None, deployments=(candidates[0],))


def resolve(snapshot: Snapshot, key: KeyInfo, requested: str, provider_hint: str | None = None) -> Route:
    """The route for ``requested``; a 400 ``GatewayError`` if it is unknown or not allowed for ``key``."""
    if provider_hint and ":" not in requested:
        return _explicit(snapshot, key, provider_hint, requested, requested)
    view = tiers_for(snapshot, key.tenant_id)
    if requested == AUTO:
        return tier_route(snapshot, key, default_auto_tier(view, key), requested=AUTO)
    tier = view.tiers.get(requested)
    if tier is not None:
        return tier_route(snapshot, key, tier)
    deployment = snapshot.models.get(requested)
    if deployment is not None and usable(deployment, key):
        if not key.may_use(deployment.name):
            raise _not_allowed(requested)
        return Route(requested=requested, tier=None, deployments=(deployment,))
    if ":" in requested:
        provider_name, _, model_name = requested.partition(":")
        return _explicit(snapshot, key, provider_name, model_name, requested)
    raise invalid_request(
        f"The model '{requested}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def tier_route(snapshot: Snapshot, key: KeyInfo, tier: TierInfo, *, requested: str | None = None) -> Route:
    """The route through ``tier`` (400 if the key may not use it or it has no enabled models)."""
    if not key.may_use(tier.name):
        raise _not_allowed(tier.name)
    deployments = tuple(d for d in tier.deployments if usable(d, key))
    if not deployments:
        capped = " within its max_cost_per_million" if tier.max_cost_per_million is not None else ""
        raise invalid_request(
            f"The tier '{tier.name}' has no enabled models{capped}.", param="model", code="model_not_found"
        )
    route = Route(requested=requested or tier.name, tier=tier.name, deployments=_with_fallback(snapshot, deployments))
    return balanced(route, tier.balance)


def balanced(route: Route, balance: Balance | None) -> Route:
    """``route`` with its shared positions drawn by weight now, or left for failover to order by statistics."""
    if balance is None:
        return route
    if balance.strategy == balancing.WEIGHTED:
        return balancing.weighted(route, balance)
    return replace(route, balance=balance)


def local_first(snapshot: Snapshot, route: Route) -> Route:
    """``route`` with the local fallback model tried first (the ``local_first`` strategy)."""
    fallback = snapshot.local_fallback
    if fallback is None or route.deployments[:1] == (fallback,):
        return route
    rest = tuple(d for d in route.deployments if d != fallback)
    return replace(route, deployments=(fallback, *rest))


def auto_allowed(view: TierView, key: KeyInfo) -> bool:
    """True if `auto` can route for this key: some tier with a complexity band is allowed."""
    return any(key.may_use(tier.name) for tier in view.bands)


def default_auto_tier(view: TierView, key: KeyInfo) -> TierInfo:
    """The tier `auto` uses without scoring: the middle of the allowed bands."""
    try:
        name = view.scorer.middle(allowed=key.may_use)
    except NoTierAllowed:
        raise no_auto_tier(view) from None
    return view.tiers[name]


def no_auto_tier(view: TierView) -> Exception:
    """400 for `auto` when no tier with a complexity band may be used."""
    if not view.bands:
        message = "Automatic routing is not configured: no tier has a usable model. Name a model or tier instead."
        return invalid_request(message, param="model", code="model_not_found")
    return invalid_request(
        "This API key may not use any of the tiers automatic routing chooses from "
        f"({', '.join(t.name for t in view.bands)}). Name a model or tier it may use.",
        param="model",
        code="model_not_allowed",
    )


def _not_allowed(requested: str) -> Exception:
    return invalid_request(
        f"This API key is not allowed to use the model '{requested}'.", param="model", code="model_not_allowed"
    )


def visible_models(snapshot: Snapshot, key: KeyInfo) -> list[tuple[str, str]]:
    """(id, owned_by) of each model, tier and exact alias this key may name, and `auto` if it can route.

    Glob aliases (``claude-*``) cannot be listed; an exact alias is listed when its target is (``GET /v1/models``).
    """
    view = tiers_for(snapshot, key.tenant_id)
    entries = [(name, d.provider.name) for name, d in snapshot.models.items() if key.may_use(name) and usable(d, key)]
    entries += [(name, "gateway-tier") for name in view.tiers if key.may_use(name)]
    if auto_allowed(view, key):
        entries.append((AUTO, "gateway-router"))
    names = {name for name, _ in entries}
    entries += [
        (alias.pattern, "gateway-alias")
        for alias in visible_aliases(snapshot, key.tenant_id)
        if alias.pattern not in names and (alias.target in names or ":" in alias.target)
    ]
    return sorted(entries)

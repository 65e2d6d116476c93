"""Resolve the ``model`` a client asked for into an ordered list of deployments.

``model`` may be a concrete public model name, a tier name, or
``provider:model`` / ``local:model`` (``local`` is the provider of the global
local fallback). A tier's models come first (primary, then fallbacks); the
local fallback, when enabled, is tried last.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway_platform.errors import invalid_request
from providers.adapters.base import Deployment
from routing.snapshot import KeyInfo, Snapshot

LOCAL_PROVIDER_ALIAS = "local"


@dataclass(frozen=True, slots=True)
class Route:
    requested: str
    tier: str | None
    deployments: tuple[Deployment, ...]


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
        if d.provider.name == provider_name and model_name in (d.name, d.upstream_model) and key.may_use(d.name)
    ]
    if not candidates:
        allowed = sorted(
            d.name for d in snapshot.models.values() if d.provider.name == provider_name and key.may_use(d.name)
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
    tier = snapshot.tiers.get(requested)
    if tier is not None:
        if not key.may_use(tier.name):
            raise _not_allowed(requested)
        if not tier.deployments:
            raise invalid_request(
                f"The tier '{requested}' has no enabled models.", param="model", code="model_not_found"
            )
        return Route(requested=requested, tier=tier.name, deployments=_with_fallback(snapshot, tier.deployments))
    deployment = snapshot.models.get(requested)
    if deployment is not None:
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


def _not_allowed(requested: str) -> Exception:
    return invalid_request(
        f"This API key is not allowed to use the model '{requested}'.", param="model", code="model_not_allowed"
    )


def visible_models(snapshot: Snapshot, key: KeyInfo) -> list[tuple[str, str]]:
    """(id, owned_by) of every model and tier this key may name, for ``GET /v1/models``."""
    entries = [(name, d.provider.name) for name, d in snapshot.models.items() if key.may_use(name)]
    entries += [(name, "gateway-tier") for name in snapshot.tiers if key.may_use(name)]
    return sorted(entries)

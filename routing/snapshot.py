"""The in-process configuration snapshot the request hot path reads.

Tiers, models, providers and policies are loaded from PostgreSQL into frozen
dataclasses once per configuration version; API keys are loaded on first use
and cached for the same version. Each request costs one Redis GET to compare
versions (``routing.config_version``) and no database query unless something
changed. Loading runs in a worker thread, one load at a time per process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from providers.adapters.base import Deployment, ProviderConfig
from routing import config_version

logger = logging.getLogger(__name__)

KEY_CACHE_MAX = 50_000


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the hot path needs to know about an API key, its team and tenant."""

    id: int
    name: str
    prefix: str
    team_id: int
    team_slug: str
    tenant_id: int
    tenant_slug: str
    tenant_active: bool
    allowed_models: frozenset[str]
    expires_at: datetime | None
    revoked: bool
    rpm_limit: int | None
    tpm_limit: int | None

    def may_use(self, name: str) -> bool:
        return not self.allowed_models or name in self.allowed_models

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class TierInfo:
    id: int
    name: str
    description: str
    capabilities: tuple[str, ...]
    deployments: tuple[Deployment, ...]
    complexity_max: float | None = None  # upper edge of the `auto` band; None keeps the tier out of `auto`
    max_output_tokens: int | None = None
    max_cost_per_million: Decimal | None = None  # orders tiers for cascades when bands are unset


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    models: dict[str, Deployment]
    tiers: dict[str, TierInfo]
    providers: dict[str, ProviderConfig]
    local_fallback: Deployment | None
    # What other apps load with the snapshot (``register_loader``), by name.
    extensions: dict[str, Any] = field(default_factory=dict)


_loaders: dict[str, Callable[[], Any]] = {}


def register_loader(name: str, loader: Callable[[], Any]) -> None:
    """Load ``loader()`` into ``Snapshot.extensions[name]`` with every snapshot.

    Apps register in ``AppConfig.ready`` so their configuration (policies,
    skills, budgets, ...) is reloaded on the same version stamp and read on the
    hot path without a query. The loader runs synchronously, off the event loop.
    """
    _loaders[name] = loader


MOCK_CREDENTIAL = "mock-upstream"


def provider_base_url(kind: str, base_url: str, has_credential: bool) -> str:
    """The URL requests go to: the mock upstream for providers without a credential, when it runs."""
    mock = settings.GATEWAY["MOCK_UPSTREAM_URL"]
    if mock and not has_credential:
        return mock.rstrip("/") + ("/v1" if kind == "openai" else "")
    return base_url


def provider_config(provider: object) -> ProviderConfig:
    """A provider row as the gateway sees it: env credential resolved, mock-upstream override applied."""
    from providers.models import Provider

    assert isinstance(provider, Provider)
    api_key = (os.environ.get(provider.api_key_env) if provider.api_key_env else None) or None
    base_url = provider_base_url(provider.kind, provider.base_url, bool(api_key))
    if base_url != provider.base_url and provider.api_key_env:
        api_key = MOCK_CREDENTIAL  # the mock, like the real API, wants some credential
    return ProviderConfig(
        id=provider.pk,
        name=provider.name,
        kind=provider.kind,
        base_url=base_url,
        api_key=api_key,
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
        total_timeout=provider.total_timeout,
        max_connections=provider.max_connections,
    )


def load_snapshot(version: int) -> Snapshot:
    """Build a snapshot from the database (synchronous; run it off the event loop)."""
    from providers.models import Model, Provider
    from routing.models import RoutingPolicy, Tier

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
        )
    tiers: dict[str, TierInfo] = {}
    for tier in Tier.objects.filter(enabled=True, tenant=None).prefetch_related("tier_models__model"):
        deployments = tuple(models[tm.model.name] for tm in tier.tier_models.all() if tm.model.name in models)
        tiers[tier.name] = TierInfo(
            id=tier.pk,
            name=tier.name,
            description=tier.description,
            capabilities=tuple(tier.capabilities),
            deployments=deployments,
            complexity_max=tier.complexity_max,
            max_output_tokens=tier.max_output_tokens,
            max_cost_per_million=tier.max_cost_per_million,
        )
    policy = RoutingPolicy.objects.filter(tenant__isnull=True).select_related("fallback_model").first()
    fallback = None
    if policy and policy.fallback_enabled and policy.fallback_model:
        fallback = models.get(policy.fallback_model.name)
    extensions = {name: loader() for name, loader in _loaders.items()}
    return Snapshot(
        version=version,
        models=models,
        tiers=tiers,
        providers=providers,
        local_fallback=fallback,
        extensions=extensions,
    )


def load_key(key_hash: str) -> KeyInfo | None:
    """Look one key up by the hash of its secret (synchronous)."""
    from tenants.models import ApiKey

    key = ApiKey.objects.select_related("team__tenant").filter(key_hash=key_hash).first()
    if key is None:
        return None
    team = key.team
    return KeyInfo(
        id=key.pk,
        name=key.name,
        prefix=key.prefix,
        team_id=team.pk,
        team_slug=team.slug,
        tenant_id=team.tenant_id,
        tenant_slug=team.tenant.slug,
        tenant_active=team.tenant.is_active,
        allowed_models=frozenset(key.allowed_models),
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
    )


class ConfigCache:
    """Per-process holder of the current snapshot and the keys seen under it."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._keys: dict[str, KeyInfo | None] = {}
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Snapshot:
        """The snapshot for the current version, reloading first if it moved."""
        version = await config_version.current()
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        async with self._lock:
            current = self._snapshot
            if current is None or current.version != version:
                current = await sync_to_async(load_snapshot, thread_sensitive=False)(version)
                self._snapshot = current
                self._keys = {}
                logger.info("configuration snapshot loaded", extra={"config_version": version})
        return current

    async def key(self, snapshot: Snapshot, key_hash: str) -> KeyInfo | None:
        """The key with this hash as of ``snapshot``'s version (None if unknown)."""
        keys = self._keys
        if key_hash in keys:
            return keys[key_hash]
        info = await sync_to_async(load_key, thread_sensitive=False)(key_hash)
        if self._snapshot is snapshot:  # do not cache into a newer version's map
            if len(keys) >= KEY_CACHE_MAX:
                keys.clear()
            keys[key_hash] = info
        return info


_caches: dict[asyncio.AbstractEventLoop, ConfigCache] = {}


def config_cache() -> ConfigCache:
    """The cache of the running event loop (one per process in servers)."""
    loop = asyncio.get_running_loop()
    cache = _caches.get(loop)
    if cache is None:
        cache = _caches[loop] = ConfigCache()
    return cache

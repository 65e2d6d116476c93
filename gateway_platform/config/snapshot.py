"""The in-process configuration snapshot the request hot path reads (the config kernel).

Tiers, models, providers and policies are loaded from PostgreSQL into frozen
dataclasses once per configuration version by loaders that the apps register
(``register_catalog_loader``, ``register_key_loader``, ``register_loader``), so
this module imports no app and every app can import it; API keys are loaded on first use
and cached for the same version. Each request costs one Redis GET to compare
versions (``gateway_platform.config.version``) at most every ``CONFIG_POLL_SECONDS``
(0.5 s by default, so a request does not wait on it) and no database query unless
something changed. Loading runs in a worker thread, one load at a time per process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway_platform.config import version as config_version
from gateway_platform.event_loops import per_event_loop

if TYPE_CHECKING:  # value types only: the kernel imports no app at run time
    from providers.adapters.base import Deployment, ProviderConfig

    Catalog: TypeAlias = tuple[
        dict[str, Deployment], dict[str, "TierInfo"], dict[str, ProviderConfig], Deployment | None
    ]

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
class Balance:
    """Tier positions served by several deployments, and how they share them (``routing.balancing``).

    ``groups`` holds one entry per position with two or more deployments: its
    ``(deployment name, weight)`` pairs, heaviest first.
    """

    strategy: str  # weighted | least-busy | latency
    groups: tuple[tuple[tuple[str, int], ...], ...]


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
    balance: Balance | None = None  # None: one deployment per position


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


_catalog_loader: Callable[[], Catalog] | None = None
_key_loader: Callable[[str], KeyInfo | None] | None = None


def register_catalog_loader(loader: Callable[[], Catalog]) -> None:
    """Set what loads models, tiers, providers and the local fallback (``routing`` registers it)."""
    global _catalog_loader
    _catalog_loader = loader


def register_key_loader(loader: Callable[[str], KeyInfo | None]) -> None:
    """Set what looks an API key up by the hash of its secret (``tenants`` registers it)."""
    global _key_loader
    _key_loader = loader


def load_snapshot(version: int) -> Snapshot:
    """Build a snapshot from the database (synchronous; run it off the event loop)."""
    if _catalog_loader is None:
        raise RuntimeError("no catalog loader registered: is the routing app installed?")
    models, tiers, providers, fallback = _catalog_loader()
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
    if _key_loader is None:
        raise RuntimeError("no key loader registered: is the tenants app installed?")
    return _key_loader(key_hash)


class ConfigCache:
    """Per-process holder of the current snapshot and the keys seen under it.

    Valid keys and unknown key hashes are cached apart, each bounded and evicted
    least-recently-used first, so a flood of random keys can neither grow memory
    nor push the valid keys out. Every entry is re-read from PostgreSQL once it is
    older than ``GATEWAY_KEY_CACHE_MAX_AGE_SECONDS``: a revocation or suspension
    whose Redis version bump was lost still takes effect within that bound.
    """

    def __init__(self, poll_seconds: float | None = None) -> None:
        self._snapshot: Snapshot | None = None
        self._keys: OrderedDict[str, tuple[KeyInfo, float]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._lock = asyncio.Lock()
        self._poll_seconds = settings.GATEWAY["CONFIG_POLL_SECONDS"] if poll_seconds is None else poll_seconds
        self._checked_at = -math.inf
        # The version read in flight, and the key loads in flight (of the current snapshot), which the
        # requests asking meanwhile share: under load, every request arriving while the first one waits
        # on Redis or PostgreSQL would otherwise send the same read (tens at once at 64 connections).
        self._polling: asyncio.Future[int] | None = None
        self._loading: dict[str, asyncio.Future[KeyInfo | None]] = {}

    async def snapshot(self) -> Snapshot:
        """The snapshot for the current version, reloading first if it moved.

        The version stamp is read at most once per ``CONFIG_POLL_SECONDS`` per
        process, so requests in between use the snapshot without a Redis round trip.
        """
        current = self._snapshot
        now = time.monotonic()
        if current is not None and now - self._checked_at < self._poll_seconds:
            return current
        version = await self._version()
        self._checked_at = now
        if current is not None and current.version == version:
            return current
        async with self._lock:
            current = self._snapshot
            if current is None or current.version != version:
                current = await sync_to_async(load_snapshot, thread_sensitive=False)(version)
                self._snapshot = current
                self._keys = OrderedDict()
                self._unknown = OrderedDict()
                self._loading = {}  # loads begun under the old version are not joined
                logger.info("configuration snapshot loaded", extra={"config_version": version})
        return current

    async def _version(self) -> int:
        """The version stamp, one Redis read for every request that asks while it is in flight."""
        polling = self._polling
        if polling is None or polling.done():
            polling = self._polling = asyncio.ensure_future(config_version.current())
        # Shielded: a request cancelled while waiting must not cancel the read the others wait for.
        return await asyncio.shield(polling)

    def cached_key(self, key_hash: str) -> KeyInfo | None:
        """The valid-key cache entry for ``key_hash``, if it is fresh (no I/O)."""
        entry = self._keys.get(key_hash)
        if entry is None or time.monotonic() - entry[1] > settings.GATEWAY["KEY_CACHE_MAX_AGE_SECONDS"]:
            return None
        self._keys.move_to_end(key_hash)
        return entry[0]

    def known_unknown(self, key_hash: str) -> bool:
        """Whether ``key_hash`` was looked up recently and matched no key (no I/O)."""
        loaded = self._unknown.get(key_hash)
        return loaded is not None and time.monotonic() - loaded <= settings.GATEWAY["KEY_CACHE_MAX_AGE_SECONDS"]

    async def key(self, snapshot: Snapshot, key_hash: str) -> KeyInfo | None:
        """The key with this hash as of ``snapshot``'s version (None if unknown)."""
        cached = self.cached_key(key_hash)
        if cached is not None or self.known_unknown(key_hash):
            return cached
        loading = self._loading.get(key_hash)
        if loading is None:  # else the same key is being loaded (its entry expired under load): wait for that
            loading = self._loading[key_hash] = asyncio.ensure_future(self._load_key(snapshot, key_hash))
            loading.add_done_callback(lambda done: self._loaded(key_hash, done))
        return await asyncio.shield(loading)

    def _loaded(self, key_hash: str, done: asyncio.Future[KeyInfo | None]) -> None:
        if self._loading.get(key_hash) is done:
            del self._loading[key_hash]

    async def _load_key(self, snapshot: Snapshot, key_hash: str) -> KeyInfo | None:
        info = await sync_to_async(load_key, thread_sensitive=False)(key_hash)
        if self._snapshot is snapshot:  # do not cache into a newer version's map
            now = time.monotonic()
            if info is None:
                _remember(self._unknown, key_hash, now, settings.GATEWAY["UNKNOWN_KEY_CACHE_MAX"])
            else:
                self._unknown.pop(key_hash, None)
                _remember(self._keys, key_hash, (info, now), KEY_CACHE_MAX)
        return info


def _remember(cache: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)


@per_event_loop
def config_cache() -> ConfigCache:
    """The cache of the running event loop (one per process in servers)."""
    return ConfigCache()

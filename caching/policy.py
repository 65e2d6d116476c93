"""Cache policies as the hot path reads them (from the snapshot), and the cacheability rules.

A tenant's own ``CachePolicy`` row wins; a tenant without one follows the
global row (no tenant). Without a global row the cache is off (``NO_POLICY``):
it is switched on by the config file's ``caching:`` section, which
``seed_defaults`` (``make run``) imports, or by an admin. Whether a
request may use the cache is a pure function of the policy, the request body
and the ``X-Gateway-Cache`` header (``decide``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gateway_platform.config.snapshot import Snapshot, register_loader

EXTENSION = "caching.policies"
DEFAULT_ROUTES = ("chat.completions", "messages")


@dataclass(frozen=True, slots=True)
class CachePolicyInfo:
    """One tenant's cache policy (or the global default)."""

    enabled: bool = True
    semantic_enabled: bool = True
    semantic_threshold: float = 0.85
    ttl_seconds: int = 3600
    max_entries: int = 1000
    cacheable_routes: tuple[str, ...] = ()
    cacheable_models: tuple[str, ...] = ()
    max_temperature: float = 0.7
    tools_rule: str = "never"
    read_only_tools: tuple[str, ...] = ()
    embedder: str = "local"
    embedding_model: str = ""
    embedding_dimensions: int = 384


NO_POLICY = CachePolicyInfo(enabled=False)


@dataclass(frozen=True, slots=True)
class CachePolicies:
    default: CachePolicyInfo = NO_POLICY
    by_tenant: dict[int, CachePolicyInfo] = field(default_factory=dict)


def policy_info(row: Any) -> CachePolicyInfo:
    """A ``CachePolicy`` row as a frozen value."""
    return CachePolicyInfo(
        enabled=row.enabled,
        semantic_enabled=row.semantic_enabled,
        semantic_threshold=row.semantic_threshold,
        ttl_seconds=row.ttl_seconds,
        max_entries=row.max_entries,
        cacheable_routes=tuple(row.cacheable_routes),
        cacheable_models=tuple(row.cacheable_models),
        max_temperature=row.max_temperature,
        tools_rule=row.tools_rule,
        read_only_tools=tuple(row.read_only_tools),
        embedder=row.embedder,
        embedding_model=row.embedding_model,
        embedding_dimensions=row.embedding_dimensions,
    )


def load_cache_policies() -> CachePolicies:
    """Every cache policy (synchronous; the snapshot loader)."""
    from caching.models import CachePolicy

    default = NO_POLICY
    by_tenant: dict[int, CachePolicyInfo] = {}
    for row in CachePolicy.objects.all():
        if row.tenant_id is None:
            default = policy_info(row)
        else:
            by_tenant[row.tenant_id] = policy_info(row)
    return CachePolicies(default, by_tenant)


def cache_policy(snapshot: Snapshot, tenant_id: int | None) -> CachePolicyInfo:
    """The cache policy in force for a tenant."""
    policies: CachePolicies = snapshot.extensions.get(EXTENSION) or CachePolicies()
    if tenant_id is not None and tenant_id in policies.by_tenant:
        return policies.by_tenant[tenant_id]
    return policies.default


def register() -> None:
    register_loader(EXTENSION, load_cache_policies)


class Mode(Enum):
    """What the cache does for one request."""

    BYPASS = "bypass"  # neither look up nor store
    STORE_ONLY = "store_only"  # X-Gateway-Cache: no-cache
    FULL = "full"  # look up, and store on a miss


@dataclass(frozen=True, slots=True)
class Decision:
    mode: Mode
    reason: str = ""


def client_directive(headers: dict[bytes, bytes]) -> str:
    """The ``X-Gateway-Cache`` request header, lower-cased (``no-cache``, ``no-store`` or '')."""
    return headers.get(b"x-gateway-cache", b"").decode("latin-1").strip().lower()


def tools_allowed(policy: CachePolicyInfo, tools: object) -> bool:
    """Whether a request defining ``tools`` may be cached under ``policy``.

    Replaying a cached tool call repeats its side effect, so by default a
    request with tools is not cached; ``read_only`` allows it when every tool
    the request defines matches a pattern in ``read_only_tools``.
    """
    if not tools:
        return True
    if policy.tools_rule == "always":
        return True
    if policy.tools_rule != "read_only" or not isinstance(tools, list):
        return False
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not any(fnmatch.fnmatchcase(name, p) for p in policy.read_only_tools):
            return False
    return True


def decide(
    policy: CachePolicyInfo, *, endpoint: str, route_name: str, body: dict[str, Any], directive: str
) -> Decision:
    """Whether (and how) the cache serves this request; pure."""
    if not policy.enabled:
        return Decision(Mode.BYPASS, "disabled")
    if directive == "no-store":
        return Decision(Mode.BYPASS, "no-store")
    if endpoint not in (policy.cacheable_routes or DEFAULT_ROUTES):
        return Decision(Mode.BYPASS, "route")
    if policy.cacheable_models and route_name not in policy.cacheable_models:
        return Decision(Mode.BYPASS, "model")
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and temperature > policy.max_temperature:
        return Decision(Mode.BYPASS, "temperature")
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        return Decision(Mode.BYPASS, "n")
    if not tools_allowed(policy, body.get("tools") or body.get("functions")):
        return Decision(Mode.BYPASS, "tools")
    if directive == "no-cache":
        return Decision(Mode.STORE_ONLY, "no-cache")
    return Decision(Mode.FULL)

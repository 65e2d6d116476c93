"""Agent sessions: who is the same conversation, and which deployment keeps its prompt cache warm.

**Identity** (per tenant) comes from what clients already send, first match wins:

1. ``X-Gateway-Session`` (explicit);
2. ``prompt_cache_key`` (Codex CLI, OpenAI Responses and chat);
3. ``client_metadata`` ``session_id`` / ``conversation_id`` / ``thread_id`` (Codex);
4. ``metadata.user_id`` (Claude Code puts its session id in it; the Messages
   translation carries it as ``user``) and ``metadata.session_id``;
5. ``user`` (OpenAI; coarse: one person's sessions share it).

OpenAI upstreams listed in ``GATEWAY_PROMPT_CACHE_KEY_HOSTS`` get the session
as ``prompt_cache_key`` (hashed with the tenant), which routes a session's
requests to the same cache machines; Anthropic upstreams get ``cache_control``
breakpoints (``providers.adapters.anthropic_translate.apply_cache_control``).

**Affinity**: a provider's prompt cache only serves a byte-identical prefix on
the same deployment, so a session stays on the deployment that last served it
while it is healthy. The pin — tier and deployment — lives in Redis with a TTL
(``GATEWAY_SESSION_AFFINITY_SECONDS``, 0 turns it off), shared by every
process. A request of the session whose route still holds the pinned
deployment (same tier) tries it first, and skips the cascade; when the tier
changes the pin is ignored, and when the pinned deployment fails, failover
moves on (its circuit keeps it out) and the deployment that answers becomes
the new pin. Redis errors fail open: routing goes on without affinity.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from redis.exceptions import RedisError

from gateway_platform.redis_clients import async_client
from routing.resolver import Route

logger = logging.getLogger(__name__)

SESSION_HEADER = b"x-gateway-session"
MAX_SESSION_CHARS = 200
CLIENT_METADATA_KEYS = ("session_id", "conversation_id", "thread_id")
KEY_PREFIX = "gw:affinity"


def _clean(value: object) -> str:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text[:MAX_SESSION_CHARS]
    return ""


def session_from(body: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> str:
    """The client's session id for a request ('' when it sends none)."""
    header = headers.get(SESSION_HEADER)
    if header:
        return _clean(header.decode("latin-1"))
    found = _clean(body.get("prompt_cache_key"))
    if found:
        return found
    client_metadata = body.get("client_metadata")
    if isinstance(client_metadata, dict):
        for name in CLIENT_METADATA_KEYS:
            found = _clean(client_metadata.get(name))
            if found:
                return found
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        found = _clean(metadata.get("user_id")) or _clean(metadata.get("session_id"))
        if found:
            return found
    return _clean(body.get("user"))


def session_from_raw(raw: bytes, headers: Mapping[bytes, bytes]) -> str:
    """``session_from`` on a raw JSON body (inbound formats whose translation drops the fields)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = {}
    return session_from(body if isinstance(body, dict) else {}, headers)


def prompt_cache_key(tenant_id: int, session: str) -> str:
    """The ``prompt_cache_key`` sent to OpenAI upstreams for a session (hashed: never the client's id)."""
    return hashlib.sha256(f"{tenant_id}:{session}".encode()).hexdigest()[:32]


def sends_prompt_cache_key(base_url: str) -> bool:
    """Whether an OpenAI-compatible upstream at ``base_url`` is known to accept ``prompt_cache_key``."""
    host = urlsplit(base_url).hostname or ""
    return host in settings.GATEWAY["PROMPT_CACHE_KEY_HOSTS"]


def affinity_seconds() -> int:
    return int(settings.GATEWAY["SESSION_AFFINITY_SECONDS"])


def affinity_key(tenant_id: int, session: str) -> str:
    """The Redis key of a session's pin (the session id hashed: ids may be long or personal)."""
    return f"{KEY_PREFIX}:{tenant_id}:{hashlib.sha256(session.encode()).hexdigest()[:32]}"


@dataclass(frozen=True, slots=True)
class Pin:
    tier: str
    deployment: str

    def encode(self) -> bytes:
        return orjson.dumps([self.tier, self.deployment])

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Pin | None:
        if not raw:
            return None
        try:
            tier, deployment = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None
        return cls(str(tier), str(deployment))


def apply_pin(route: Route, pin: Pin | None) -> Route | None:
    """``route`` with the pinned deployment first, or None when the pin does not apply (pure)."""
    if pin is None or pin.tier != (route.tier or ""):
        return None
    names = [d.name for d in route.deployments]
    if pin.deployment not in names:
        return None
    index = names.index(pin.deployment)
    pinned = route.deployments[index]
    rest = route.deployments[:index] + route.deployments[index + 1 :]
    return Route(requested=route.requested, tier=route.tier, deployments=(pinned, *rest))


async def pinned(tenant_id: int, session: str) -> Pin | None:
    """The session's pin, if any (None when affinity is off or Redis is unavailable)."""
    if not session or affinity_seconds() <= 0:
        return None
    try:
        return Pin.decode(await async_client().get(affinity_key(tenant_id, session)))
    except RedisError:
        logger.warning("session affinity unavailable; routing without it")
        return None


async def pin(tenant_id: int, session: str, pin: Pin) -> None:
    """Remember (or refresh) the deployment that served the session."""
    seconds = affinity_seconds()
    if not session or seconds <= 0:
        return
    try:
        await async_client().set(affinity_key(tenant_id, session), pin.encode(), ex=seconds)
    except RedisError:
        logger.warning("session affinity not stored")

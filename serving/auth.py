"""API key authentication for /v1/ requests, from the configuration snapshot.

A key found in the process's key cache costs no I/O. A key that is not cached
costs a PostgreSQL lookup, so guessing is limited per client address: after
``GATEWAY_AUTH_FAILURE_LIMIT`` wrong keys in a minute, an address gets 429 for
uncached keys until the minute is over (keys it already used keep working).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone
from prometheus_client import Counter

from gateway_platform.client_address import client_address_var
from gateway_platform.config.snapshot import ConfigCache, KeyInfo, Snapshot
from gateway_platform.errors import GatewayError, authentication_error, permission_error
from gateway_platform.redis_clients import async_client
from tenants.keys import hash_secret

logger = logging.getLogger(__name__)

FAILURE_WINDOW_SECONDS = 60
AUTH_FAILURES = Counter("gateway_auth_failures_total", "Requests with a wrong /v1/ API key.", ["outcome"])


def _failures_key(address: str) -> str:
    return f"rl:authfail:{address}"  # rl:* like the other limits (tests reset them together)


async def _refuse_if_blocked(address: str) -> None:
    if not address:
        return
    failures = await async_client().get(_failures_key(address))
    if failures is not None and int(failures) >= settings.GATEWAY["AUTH_FAILURE_LIMIT"]:
        AUTH_FAILURES.labels("blocked").inc()
        ttl = await async_client().ttl(_failures_key(address))
        raise GatewayError(
            "Too many requests with a wrong API key from this address; try again later.",
            status=429,
            type="rate_limit_error",
            code="too_many_failed_authentications",
            headers={"Retry-After": str(max(1, ttl))},
        )


async def _count_failure(address: str) -> None:
    AUTH_FAILURES.labels("wrong_key").inc()
    if not address:
        return
    pipe = async_client().pipeline(transaction=True)
    pipe.set(_failures_key(address), 0, ex=FAILURE_WINDOW_SECONDS, nx=True)  # the window starts at the first
    pipe.incr(_failures_key(address))
    await pipe.execute()


def bearer_token(headers: dict[bytes, bytes], *, allow_x_api_key: bool = False) -> str | None:
    """The key sent as ``Authorization: Bearer`` (or ``x-api-key`` where allowed)."""
    auth = headers.get(b"authorization")
    if auth:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if allow_x_api_key:
        key = headers.get(b"x-api-key")
        if key:
            return key.decode("latin-1").strip() or None
    return None


def _mask(token: str) -> str:
    return f"{token[:6]}…{token[-4:]}" if len(token) > 12 else "…"


async def authenticate(
    cache: ConfigCache, snapshot: Snapshot, headers: dict[bytes, bytes], *, allow_x_api_key: bool = False
) -> KeyInfo:
    """The key behind the request; 401 for missing or unknown keys, 403 for unusable ones."""
    token = bearer_token(headers, allow_x_api_key=allow_x_api_key)
    if token is None:
        raise authentication_error(
            "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'."
        )
    key_hash = hash_secret(token)
    key = cache.cached_key(key_hash)
    if key is None:
        address = client_address_var.get()
        await _refuse_if_blocked(address)  # before the lookup a guess would cost
        key = await cache.key(snapshot, key_hash)
        if key is None:
            await _count_failure(address)
            raise authentication_error(f"Incorrect API key provided: {_mask(token)}.")
    if key.revoked:
        raise permission_error(f"The API key '{key.name}' has been revoked.", code="key_revoked")
    if key.is_expired(timezone.now()):
        raise permission_error(f"The API key '{key.name}' has expired.", code="key_expired")
    if not key.tenant_active:
        raise permission_error(f"The tenant '{key.tenant_slug}' is suspended.", code="tenant_suspended")
    return key


__all__ = ["GatewayError", "authenticate", "bearer_token"]

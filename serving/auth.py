"""API key authentication for /v1/ requests, from the configuration snapshot."""

from __future__ import annotations

from django.utils import timezone

from gateway_platform.config.snapshot import ConfigCache, KeyInfo, Snapshot
from gateway_platform.errors import GatewayError, authentication_error, permission_error
from tenants.keys import hash_secret


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
    key = await cache.key(snapshot, hash_secret(token))
    if key is None:
        raise authentication_error(f"Incorrect API key provided: {_mask(token)}.")
    if key.revoked:
        raise permission_error(f"The API key '{key.name}' has been revoked.", code="key_revoked")
    if key.is_expired(timezone.now()):
        raise permission_error(f"The API key '{key.name}' has expired.", code="key_expired")
    if not key.tenant_active:
        raise permission_error(f"The tenant '{key.tenant_slug}' is suspended.", code="tenant_suspended")
    return key


__all__ = ["GatewayError", "authenticate", "bearer_token"]

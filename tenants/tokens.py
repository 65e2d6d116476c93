"""Personal API tokens for the management API: issue, revoke, authenticate.

A token is ``gwp-`` plus 43 URL-safe characters; only its SHA-256 hash and a
display prefix are stored (DRF's ``authtoken`` keeps tokens in clear, which our
"secrets only as hashes" rule forbids). Clients send ``Authorization: Bearer <token>``
and act as the token's user, with that user's permissions and nothing more.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from tenants.models import PersonalToken

TOKEN_PREFIX = "gwp-"
DISPLAY_LENGTH = len(TOKEN_PREFIX) + 8
LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per token per minute


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token and its secret: the only time the secret exists."""

    token: PersonalToken
    secret: str


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def personal_token_create(*, user: AbstractBaseUser, name: str, expires_at: datetime | None = None) -> IssuedToken:
    """Issue a token for ``user``; the secret is returned once and never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = PersonalToken.objects.create(  # type: ignore[misc]  # any user model instance
        user=user, name=name, prefix=secret[:DISPLAY_LENGTH], token_hash=hash_token(secret), expires_at=expires_at
    )
    return IssuedToken(token=token, secret=secret)


def personal_token_revoke(*, token: PersonalToken) -> None:
    """Revoke a token; it is refused from the next request on."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


class PersonalTokenAuthentication(TokenAuthentication):
    """DRF authentication by ``Authorization: Bearer <personal token>``."""

    keyword = "Bearer"
    model = PersonalToken

    def authenticate_credentials(self, key: str) -> tuple[Any, PersonalToken]:
        token = PersonalToken.objects.select_related("user").filter(token_hash=hash_token(key)).first()
        now = timezone.now()
        if token is None or not token.is_usable(now):
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

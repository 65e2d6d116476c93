"""API key secrets: generation, hashing and display.

A secret is ``gw-`` followed by 43 URL-safe characters (256 bits of entropy).
Only its SHA-256 hash and a short display prefix are stored; the secret itself
is shown once and never kept.
"""

from __future__ import annotations

import hashlib
import secrets

SECRET_PREFIX = "gw-"
DISPLAY_PREFIX_LENGTH = len(SECRET_PREFIX) + 8


def generate_secret() -> str:
    """Return a new random API key secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a secret: what the database stores and lookups use."""
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """The first characters of a secret, enough to recognise it in a list."""
    return secret[:DISPLAY_PREFIX_LENGTH]

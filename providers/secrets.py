"""Provider credentials a tenant brings, encrypted at rest with Fernet (the ``cryptography`` library).

Keys come from ``GATEWAY_ENCRYPTION_KEYS``: comma-separated Fernet keys, the first one encrypts,
all of them decrypt (``MultiFernet``), so a key is rotated by putting a new one first, running
``manage.py rotate_provider_keys`` (re-encrypts every stored credential with the first key) and
then dropping the old one. Without the variable a key is derived from ``DJANGO_SECRET_KEY``
(HKDF-SHA256), which every process of a deployment shares already.

Plain credentials never leave this module except into a ``ProviderConfig`` in process memory.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialUnreadable(Exception):
    """A stored credential cannot be decrypted with any configured key."""


def _derived_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gateway-provider-credentials", info=b"fernet-v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@functools.cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        return MultiFernet([Fernet(_derived_key(secret_key))])
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "GATEWAY_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
        ) from None


def fernet() -> MultiFernet:
    """The configured keys (first encrypts, all decrypt)."""
    return _fernet(tuple(settings.GATEWAY["ENCRYPTION_KEYS"]), settings.SECRET_KEY)


def encrypt(secret: str) -> str:
    return fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialUnreadable("no configured key decrypts this credential") from None


def rotate(token: str) -> str:
    """``token`` re-encrypted with the first key (raises ``CredentialUnreadable`` if no key reads it)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialUnreadable("no configured key decrypts this credential") from None

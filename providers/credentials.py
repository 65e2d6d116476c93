"""Provider credentials and addresses as the gateway uses them.

A provider row names the environment variable that holds its credential
(``api_key_env``); the secret is read here, never stored or logged. When the
bundled mock upstream runs (``make run`` without credentials), providers that
have no credential are pointed at it.
"""

from __future__ import annotations

import os

from django.conf import settings

from providers.adapters.base import ProviderConfig

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

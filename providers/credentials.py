"""Provider credentials and addresses as the gateway uses them.

A provider row names the environment variable that holds its credential
(``api_key_env``); the secret is read here, never stored or logged. When the
bundled mock upstream runs (``make run`` without credentials), providers that
have no credential are pointed at it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from django.conf import settings

from providers.adapters.base import ProviderConfig
from providers.secrets import CredentialUnreadable, decrypt

logger = logging.getLogger(__name__)

MOCK_CREDENTIAL = "mock-upstream"
# The bundled mock verifies Bedrock signatures against this secret (providers/mock_upstream/bedrock_format.py).
MOCK_AWS_CREDENTIAL = "AKIDMOCKUPSTREAM:mock-aws-secret"


def extra_header_values(provider_name: str, names: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``{header: ENV_NAME}`` → ``((header, value), ...)``; a header whose variable is unset is left out."""
    values = []
    for header, env_name in sorted(names.items()):
        value = os.environ.get(env_name)
        if value:
            values.append((header, value))
        else:
            logger.warning(
                "extra header variable not set; header not sent",
                extra={"provider": provider_name, "header": header, "variable": env_name},
            )
    return tuple(values)


def provider_base_url(kind: str, base_url: str, has_credential: bool) -> str:
    """The URL requests go to: the mock upstream for providers without a credential, when it runs."""
    mock = settings.GATEWAY["MOCK_UPSTREAM_URL"]
    if mock and not has_credential:
        return mock.rstrip("/") + ("/v1" if kind == "openai" else "")  # the mock speaks every kind at its root
    return base_url


def provider_config(provider: object) -> ProviderConfig:
    """A provider row as the gateway sees it: env credential resolved, mock-upstream override applied."""
    from providers.models import Provider

    assert isinstance(provider, Provider)
    api_key = (os.environ.get(provider.api_key_env) if provider.api_key_env else None) or None
    if provider.api_key_encrypted:
        try:
            api_key = decrypt(provider.api_key_encrypted)
        except CredentialUnreadable:
            # Rotated away or a wrong key: the provider answers 502 upstream_auth_failed, the gateway lives on.
            logger.error("provider credential cannot be decrypted", extra={"provider": provider.name})
            api_key = None
    base_url = provider_base_url(provider.kind, provider.base_url, provider.has_credential)
    if base_url != provider.base_url:
        # The mock, like the real API, wants some credential (and checks Bedrock's signature).
        api_key = MOCK_AWS_CREDENTIAL if provider.kind == provider.Kind.BEDROCK else MOCK_CREDENTIAL
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
        extra_headers=extra_header_values(provider.name, provider.extra_headers or {}),
        api_version=provider.api_version,
        region=provider.region,
        tenant_id=provider.tenant_id,
        supports_responses=provider.supports_responses,
    )

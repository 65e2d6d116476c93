"""API keys as the request path sees them: looked up by hash into the snapshot's ``KeyInfo``."""

from __future__ import annotations

from gateway_platform.config.snapshot import KeyInfo
from tenants.models import ApiKey


def load_key_info(key_hash: str) -> KeyInfo | None:
    """Look one key up by the hash of its secret (synchronous)."""
    key = ApiKey.objects.select_related("team__tenant").filter(key_hash=key_hash).first()
    if key is None:
        return None
    team = key.team
    return KeyInfo(
        id=key.pk,
        name=key.name,
        prefix=key.prefix,
        team_id=team.pk,
        team_slug=team.slug,
        tenant_id=team.tenant_id,
        tenant_slug=team.tenant.slug,
        tenant_active=team.tenant.is_active,
        allowed_models=frozenset(key.allowed_models),
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
    )

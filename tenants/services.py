"""Writes that span tenancy models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from tenants import keys
from tenants.models import ApiKey, Team, Tenant


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key and its secret: the only time the secret exists."""

    api_key: ApiKey
    secret: str


@transaction.atomic
def api_key_create(
    *,
    team: Team,
    name: str,
    created_by: AbstractBaseUser | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    budget_usd: Decimal | None = None,
) -> IssuedKey:
    """Create an API key for ``team`` and return it with its one-time secret."""
    secret = keys.generate_secret()
    api_key = ApiKey.objects.create(
        team=team,
        name=name,
        prefix=keys.display_prefix(secret),
        key_hash=keys.hash_secret(secret),
        created_by=created_by,
        allowed_models=allowed_models or [],
        expires_at=expires_at,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
    )
    if budget_usd is not None:
        from billing.models import Budget

        Budget.objects.create(api_key=api_key, amount_usd=budget_usd)
    return IssuedKey(api_key=api_key, secret=secret)


def api_key_revoke(*, api_key: ApiKey) -> None:
    """Revoke a key; the gateway refuses it from the next request on."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


@transaction.atomic
def team_get_or_create(*, tenant_slug: str, team_slug: str) -> Team:
    """The team ``tenant_slug/team_slug``, creating tenant and team when missing."""
    tenant, _ = Tenant.objects.get_or_create(slug=tenant_slug, defaults={"name": tenant_slug})
    team, _ = Team.objects.get_or_create(tenant=tenant, slug=team_slug, defaults={"name": team_slug})
    return team

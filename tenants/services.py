"""Writes that span tenancy models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants import keys
from tenants.models import ApiKey, Membership, Team, Tenant


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


class RotateError(ValueError):
    """The key cannot be rotated (it is revoked or expired)."""


@transaction.atomic
def api_key_rotate(*, api_key: ApiKey, grace: timedelta = timedelta(0)) -> IssuedKey:
    """Replace ``api_key`` by a new key with the same settings and return the new secret.

    The new key keeps the name, owner, team, model access, limits and expiry.
    Its per-key budgets *move* to the new key (same rows, so the same spend
    counters): a budget belongs to the logical key, so rotating never restarts
    it, and during the grace period the old key (``rotated_to`` the new one)
    spends from the same budgets. The old key stays valid for ``grace`` (its
    expiry moves to ``now + grace`` unless it already expires sooner); no grace
    revokes it now.
    """
    from billing.models import Budget

    old = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    now = timezone.now()
    if old.is_revoked or old.is_expired(now):
        raise RotateError(f"The key '{old.name}' is no longer usable and cannot be rotated.")
    issued = api_key_create(
        team=old.team,
        name=old.name,
        created_by=old.created_by,
        allowed_models=list(old.allowed_models),
        expires_at=old.expires_at,
        rpm_limit=old.rpm_limit,
        tpm_limit=old.tpm_limit,
    )
    for budget in Budget.objects.filter(api_key=old):
        budget.api_key = issued.api_key
        budget.save(update_fields=["api_key"])  # save(), not update(): the config version must move
    old.rotated_to = issued.api_key
    old.save(update_fields=["rotated_to"])
    if grace <= timedelta(0):
        api_key_revoke(api_key=old)
    else:
        until = now + grace
        if old.expires_at is None or old.expires_at > until:
            old.expires_at = until
            old.save(update_fields=["expires_at"])
    api_key.refresh_from_db()
    return issued


class LastOwnerError(ValueError):
    """The change would leave a team without an owner."""


def _lock_owners(team: Team) -> list[Membership]:
    # Lock the owner rows so two concurrent demotions cannot both see "another owner left".
    return list(Membership.objects.select_for_update().filter(team=team, role=Membership.Role.OWNER))


@transaction.atomic
def membership_add(*, team: Team, user: AbstractBaseUser, role: str = Membership.Role.MEMBER) -> Membership:
    """Add ``user`` to ``team`` with ``role`` (or change the role of an existing member)."""
    membership, created = Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
    if not created and membership.role != role:
        return membership_change_role(membership=membership, role=role)
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    """Give a member another role; the last owner of a team cannot step down."""
    owners = _lock_owners(membership.team)
    if membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER and len(owners) <= 1:
        raise LastOwnerError("A team needs at least one owner: make someone else owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Remove a member from a team; the last owner cannot be removed."""
    owners = _lock_owners(membership.team)
    if membership.role == Membership.Role.OWNER and len(owners) <= 1:
        raise LastOwnerError("A team needs at least one owner: make someone else owner first.")
    membership.delete()


@transaction.atomic
def team_create(
    *, owner: AbstractBaseUser, team_name: str, tenant: Tenant | None = None, tenant_name: str = ""
) -> Team:
    """A new team whose first owner is ``owner``, in ``tenant`` or in a new tenant named ``tenant_name``.

    Slugs come from the names; the caller has checked they are free and that ``owner``
    may create here (``tenants.permissions.can_create_team``).
    """
    if tenant is None:
        tenant = Tenant.objects.create(slug=slugify(tenant_name), name=tenant_name)
    team = Team.objects.create(tenant=tenant, slug=slugify(team_name), name=team_name)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team

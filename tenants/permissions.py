"""Who may see and change what: the one place the admin, portal, API and reports ask.

Roles:
- superuser: everything;
- tenant admin (``TenantRole.ADMIN``): everything inside their tenants;
- finance (``TenantRole.FINANCE``): read-only usage and billing of their tenants;
- team owner (``Membership.OWNER``): their team's keys, members and usage;
- team member: their teams, their own keys and their own usage.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from tenants.models import ApiKey, Membership, Team, Tenant, TenantRole

User = AbstractBaseUser | AnonymousUser


def _is_superuser(user: User) -> bool:
    return bool(user.is_authenticated and getattr(user, "is_superuser", False))


def administered_tenants(user: User) -> QuerySet[Tenant]:
    """Tenants the user administers."""
    if _is_superuser(user):
        return Tenant.objects.all()
    if not user.is_authenticated:
        return Tenant.objects.none()
    return Tenant.objects.filter(roles__user=user, roles__role=TenantRole.Role.ADMIN).distinct()


def reportable_tenants(user: User) -> QuerySet[Tenant]:
    """Tenants whose usage and billing reports the user may read (admins and finance)."""
    if _is_superuser(user):
        return Tenant.objects.all()
    if not user.is_authenticated:
        return Tenant.objects.none()
    return Tenant.objects.filter(roles__user=user).distinct()


def visible_teams(user: User) -> QuerySet[Team]:
    """Teams the user belongs to, plus every team of the tenants they administer."""
    if _is_superuser(user):
        return Team.objects.all()
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(
        Q(memberships__user=user) | Q(tenant__roles__user=user, tenant__roles__role=TenantRole.Role.ADMIN)
    ).distinct()


def managed_teams(user: User) -> QuerySet[Team]:
    """Teams whose keys and members the user manages (owners and tenant admins)."""
    if _is_superuser(user):
        return Team.objects.all()
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(
        Q(memberships__user=user, memberships__role=Membership.Role.OWNER)
        | Q(tenant__roles__user=user, tenant__roles__role=TenantRole.Role.ADMIN)
    ).distinct()


def visible_keys(user: User) -> QuerySet[ApiKey]:
    """Keys the user may see: all keys of managed teams, and their own keys elsewhere."""
    if _is_superuser(user):
        return ApiKey.objects.all()
    if not user.is_authenticated:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(
        Q(team__in=managed_teams(user)) | Q(team__memberships__user=user, created_by=user)
    ).distinct()


def can_manage_key(user: User, key: ApiKey) -> bool:
    """Rotate/revoke/edit: the key's creator (while still a member) or a manager of its team."""
    if managed_teams(user).filter(pk=key.team_id).exists():
        return True
    return bool(
        user.is_authenticated
        and key.created_by_id == user.pk
        and Membership.objects.filter(team_id=key.team_id, user=user).exists()
    )


def can_create_key(user: User, team: Team) -> bool:
    """Any member of the team (owners and tenant admins included) may create keys for it."""
    return visible_teams(user).filter(pk=team.pk).exists()


def can_see_team_usage(user: User, team: Team) -> bool:
    """The whole team's usage: its managers; everyone else sees only their own keys' usage."""
    return managed_teams(user).filter(pk=team.pk).exists()


def can_administer_tenant(user: User, tenant: Tenant) -> bool:
    """Change the tenant's teams, members, keys, budgets and policies (tenant admins and superusers)."""
    return administered_tenants(user).filter(pk=tenant.pk).exists()


def can_manage_team(user: User, team: Team) -> bool:
    """Add, remove and re-role the team's members (owners and tenant admins)."""
    return managed_teams(user).filter(pk=team.pk).exists()


def visible_memberships(user: User) -> QuerySet[Membership]:
    """Memberships of the teams the user can see: members see who else is in their team."""
    if _is_superuser(user):
        return Membership.objects.all()
    return Membership.objects.filter(team__in=visible_teams(user))


def manageable_keys(user: User) -> QuerySet[ApiKey]:
    """The queryset twin of ``can_manage_key``: keys the user may rotate, revoke or edit."""
    if _is_superuser(user):
        return ApiKey.objects.all()
    if not user.is_authenticated:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(
        Q(team__in=managed_teams(user)) | Q(created_by=user, team__memberships__user=user)
    ).distinct()


def can_create_team(user: User) -> bool:
    """Start a team (and, for superusers, a tenant) from the portal: superusers and tenant admins."""
    return _is_superuser(user) or administered_tenants(user).exists()


# What a name outside the people one may add gets: the same answer as a name no account has.
NOT_ADDABLE = (
    "No one in this tenant has that username or e-mail address. A platform admin adds people who are new to the tenant."
)


def addable_users(user: User, tenants: QuerySet[Tenant] | list[int]) -> QuerySet[AbstractBaseUser]:
    """The accounts ``user`` may add to a team of ``tenants`` by name (no existence oracle).

    Platform admins: any active account. Everyone else: the tenants' own people (a tenant role
    or a membership in one of their teams), so that typing a name cannot tell whether an
    account exists elsewhere on the platform.
    """
    active = get_user_model().objects.filter(is_active=True)
    if _is_superuser(user):
        return active
    return active.filter(Q(tenant_roles__tenant__in=tenants) | Q(memberships__team__tenant__in=tenants)).distinct()

"""A small two-tenant world with one user per role, shared by the admin and API permission tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from billing.models import Budget, UsageEvent
from tenants import admin_group
from tenants.models import ApiKey, Membership, Team, Tenant, TenantRole
from tests.factories import make_key, make_team

ROLES = ("root", "tenant_admin", "owner", "member", "outsider")


@dataclass
class World:
    users: dict[str, AbstractUser]
    team: Team  # acme/web: the owner's and member's team
    sibling: Team  # acme/data: same tenant, other team
    foreign: Team  # globex/web: another tenant
    keys: dict[str, ApiKey]  # owner, member, sibling, foreign
    budgets: dict[str, Budget] = field(default_factory=dict)  # tenant, team, key, foreign
    usage: dict[str, UsageEvent] = field(default_factory=dict)  # own, foreign

    @property
    def tenant(self) -> Tenant:
        return self.team.tenant

    @property
    def foreign_tenant(self) -> Tenant:
        return self.foreign.tenant


def _usage(request_id: str, key: ApiKey) -> UsageEvent:
    now = timezone.now()
    return UsageEvent.objects.create(
        request_id=request_id,
        tenant=key.team.tenant,
        team=key.team,
        api_key=key,
        endpoint="chat",
        model="m",
        status_code=200,
        started_at=now - timedelta(seconds=1),
        finished_at=now,
    )


def build_world() -> World:
    user_model = get_user_model()
    # No passwords: tests sign in with force_login, and hashing would dominate the run time.
    users: dict[str, AbstractUser] = {name: user_model.objects.create_user(name) for name in ROLES if name != "root"}
    users["root"] = user_model.objects.create_superuser("root", email="", password=None)
    team = make_team("acme", "web")
    sibling = make_team("acme", "data")
    foreign = make_team("globex", "web")
    TenantRole.objects.create(tenant=team.tenant, user=users["tenant_admin"], role=TenantRole.Role.ADMIN)
    admin_group.enroll(users["tenant_admin"])
    Membership.objects.create(team=team, user=users["owner"], role=Membership.Role.OWNER)
    Membership.objects.create(team=team, user=users["member"], role=Membership.Role.MEMBER)
    # A foreign tenant with its own admin and owner, so "foreign" rows are fully populated.
    foreign_owner = user_model.objects.create_user("globex-owner")
    Membership.objects.create(team=foreign, user=foreign_owner, role=Membership.Role.OWNER)
    keys = {
        "owner": make_key(team, created_by=users["owner"])[0],
        "member": make_key(team, created_by=users["member"])[0],
        "sibling": make_key(sibling)[0],
        "foreign": make_key(foreign, created_by=foreign_owner)[0],
    }
    world = World(users=users, team=team, sibling=sibling, foreign=foreign, keys=keys)
    world.budgets = {
        "tenant": Budget.objects.create(tenant=team.tenant, amount_usd=Decimal("100")),
        "team": Budget.objects.create(team=team, amount_usd=Decimal("50")),
        "key": Budget.objects.create(api_key=keys["member"], amount_usd=Decimal("5")),
        "foreign": Budget.objects.create(team=foreign, amount_usd=Decimal("70")),
    }
    world.usage = {"own": _usage("req-own", keys["member"]), "foreign": _usage("req-foreign", keys["foreign"])}
    return world


def colleague(world: World) -> str:
    """A person of the world's tenant who is in neither of its teams (a member of acme/ops); their username.

    Only the tenant's own people can be added to its teams by name (``tenants.permissions.addable_users``).
    """
    user, _ = get_user_model().objects.get_or_create(username="colleague")
    ops = make_team(world.tenant.slug, "ops")
    Membership.objects.get_or_create(team=ops, user=user, defaults={"role": Membership.Role.MEMBER})
    return user.get_username()

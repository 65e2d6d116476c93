"""The permission matrix through the management API: roles by objects by list, read, create, update, delete.

Roles: superuser (root), tenant admin of acme, owner and member of acme/web, and an
outsider. Targets include the same team, a sibling team of the same tenant
(cross-team) and another tenant's rows (cross-tenant): a row the user may not
see is always a 404 — the same answer as an id that does not exist — and a row
they see but may not change is a 403. The admin side is in ``test_admin_matrix``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey, Membership, Team, Tenant
from tests.tenants.world import ROLES, World, build_world, colleague

pytestmark = pytest.mark.django_db

ALL = dict.fromkeys(ROLES)


@pytest.fixture
def world() -> World:
    return build_world()


def api(world: World, role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


# --- list: which rows each role sees ----------------------------------------------------
def _names(world: World, kind: str, rows: list[dict[str, Any]]) -> set[str]:
    by_id: dict[str, Callable[[dict[str, Any]], str]] = {
        "tenants": lambda r: r["slug"],
        "teams": lambda r: str(Team.objects.get(pk=r["id"])),
        "members": lambda r: f"{r['user']}@{Team.objects.get(pk=r['team']).slug}",
        "keys": lambda r: next(k for k, v in world.keys.items() if v.pk == r["id"]),
    }
    return {by_id[kind](row) for row in rows}


LISTS: dict[str, dict[str, set[str]]] = {
    "tenants": {
        "root": {"acme", "globex"},
        "tenant_admin": {"acme"},
        "owner": set(),
        "member": set(),
        "outsider": set(),
    },
    "teams": {
        "root": {"acme/web", "acme/data", "globex/web"},
        "tenant_admin": {"acme/web", "acme/data"},
        "owner": {"acme/web"},
        "member": {"acme/web"},
        "outsider": set(),
    },
    "members": {
        "root": {"owner@web", "member@web", "globex-owner@web"},
        "tenant_admin": {"owner@web", "member@web"},
        "owner": {"owner@web", "member@web"},
        "member": {"owner@web", "member@web"},
        "outsider": set(),
    },
    "keys": {
        "root": {"owner", "member", "sibling", "foreign"},
        "tenant_admin": {"owner", "member", "sibling"},
        "owner": {"owner", "member"},
        "member": {"member"},
        "outsider": set(),
    },
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", LISTS)
def test_list(world, kind, role):
    response = api(world, role).get(f"/api/{kind}/")
    assert response.status_code == 200
    assert _names(world, kind, response.json()["results"]) == LISTS[kind][role]


def test_anonymous_gets_nothing(world):
    for kind in (*LISTS, "tokens"):
        response = APIClient().get(f"/api/{kind}/")
        assert response.status_code == 401, kind
        assert response.json() == {"detail": "Authentication credentials were not provided."}


# --- read / create / update / delete ------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One request and the status each role gets."""

    name: str
    method: str
    path: Callable[[World], str]
    expected: dict[str, int]
    body: Callable[[World], dict[str, Any]] | None = None
    effect: Callable[[World], bool] | None = None  # holds after a 2xx, and is false after a refusal


def _membership(world: World, username: str) -> Membership:
    return Membership.objects.get(user__username=username)


def _status(root: int, tenant_admin: int, owner: int, member: int, outsider: int) -> dict[str, int]:
    return {"root": root, "tenant_admin": tenant_admin, "owner": owner, "member": member, "outsider": outsider}


CASES = [
    # Tenants: superusers only; tenant admins read their own.
    Case("read own tenant", "get", lambda w: f"/api/tenants/{w.tenant.pk}/", _status(200, 200, 404, 404, 404)),
    Case(
        "read foreign tenant", "get", lambda w: f"/api/tenants/{w.foreign_tenant.pk}/", _status(200, 404, 404, 404, 404)
    ),
    Case(
        "create tenant",
        "post",
        lambda w: "/api/tenants/",
        _status(201, 403, 403, 403, 403),
        body=lambda w: {"slug": "initech", "name": "Initech"},
        effect=lambda w: Tenant.objects.filter(slug="initech").exists(),
    ),
    Case(
        "suspend own tenant",
        "patch",
        lambda w: f"/api/tenants/{w.tenant.pk}/",
        _status(200, 403, 404, 404, 404),
        body=lambda w: {"status": "suspended"},
        effect=lambda w: Tenant.objects.get(pk=w.tenant.pk).status == "suspended",
    ),
    Case(
        "delete foreign tenant",
        "delete",
        lambda w: f"/api/tenants/{w.foreign_tenant.pk}/",
        _status(204, 404, 404, 404, 404),
        effect=lambda w: not Tenant.objects.filter(pk=w.foreign_tenant.pk).exists(),
    ),
    # Teams: members read theirs; tenant admins manage their tenant's.
    Case("read own team", "get", lambda w: f"/api/teams/{w.team.pk}/", _status(200, 200, 200, 200, 404)),
    Case("read sibling team", "get", lambda w: f"/api/teams/{w.sibling.pk}/", _status(200, 200, 404, 404, 404)),
    Case("read foreign team", "get", lambda w: f"/api/teams/{w.foreign.pk}/", _status(200, 404, 404, 404, 404)),
    Case(
        "create team in own tenant",
        "post",
        lambda w: "/api/teams/",
        _status(201, 201, 403, 403, 403),
        body=lambda w: {"tenant": w.tenant.pk, "slug": "ops", "name": "Ops"},
        effect=lambda w: Team.objects.filter(slug="ops").exists(),
    ),
    Case(
        "create team in foreign tenant",
        "post",
        lambda w: "/api/teams/",
        _status(201, 400, 403, 403, 403),
        body=lambda w: {"tenant": w.foreign_tenant.pk, "slug": "ops", "name": "Ops"},
        effect=lambda w: Team.objects.filter(slug="ops").exists(),
    ),
    Case(
        "rename own team",
        "patch",
        lambda w: f"/api/teams/{w.team.pk}/",
        _status(200, 200, 403, 403, 404),
        body=lambda w: {"name": "Renamed"},
        effect=lambda w: Team.objects.get(pk=w.team.pk).name == "Renamed",
    ),
    Case(
        "rename foreign team",
        "put",
        lambda w: f"/api/teams/{w.foreign.pk}/",
        _status(200, 404, 404, 404, 404),
        body=lambda w: {"slug": "web", "name": "Renamed"},
        effect=lambda w: Team.objects.get(pk=w.foreign.pk).name == "Renamed",
    ),
    Case(
        "delete sibling team",
        "delete",
        lambda w: f"/api/teams/{w.sibling.pk}/",
        _status(204, 204, 404, 404, 404),
        effect=lambda w: not Team.objects.filter(pk=w.sibling.pk).exists(),
    ),
    Case(
        "delete own team",
        "delete",
        lambda w: f"/api/teams/{w.team.pk}/",
        _status(204, 204, 403, 403, 404),
        effect=lambda w: not Team.objects.filter(pk=w.team.pk).exists(),
    ),
    # Members: members read their team's roster; owners and tenant admins manage it.
    Case(
        "read a teammate's membership",
        "get",
        lambda w: f"/api/members/{_membership(w, 'member').pk}/",
        _status(200, 200, 200, 200, 404),
    ),
    Case(
        "read foreign membership",
        "get",
        lambda w: f"/api/members/{_membership(w, 'globex-owner').pk}/",
        _status(200, 404, 404, 404, 404),
    ),
    Case(
        "add a member",
        "post",
        lambda w: "/api/members/",
        _status(201, 201, 201, 403, 403),
        body=lambda w: {"team": w.team.pk, "user": colleague(w)},
        effect=lambda w: Membership.objects.filter(user__username="colleague", team=w.team).exists(),
    ),
    Case(
        "add someone outside the tenant",
        "post",
        lambda w: "/api/members/",
        _status(201, 400, 400, 403, 403),
        body=lambda w: {"team": w.team.pk, "user": "outsider"},
        effect=lambda w: Membership.objects.filter(user__username="outsider").exists(),
    ),
    Case(
        "add a member to a sibling team",
        "post",
        lambda w: "/api/members/",
        _status(201, 201, 400, 403, 403),
        body=lambda w: {"team": w.sibling.pk, "user": colleague(w)},
        effect=lambda w: Membership.objects.filter(user__username="colleague", team=w.sibling).exists(),
    ),
    Case(
        "add oneself to a foreign team",
        "post",
        lambda w: "/api/members/",
        _status(201, 400, 400, 403, 403),
        body=lambda w: {"team": w.foreign.pk, "user": "member"},
        effect=lambda w: Membership.objects.filter(user__username="member", team=w.foreign).exists(),
    ),
    Case(
        "promote a member",
        "patch",
        lambda w: f"/api/members/{_membership(w, 'member').pk}/",
        _status(200, 200, 200, 403, 404),
        body=lambda w: {"role": "owner"},
        effect=lambda w: _membership(w, "member").role == "owner",
    ),
    Case(
        "remove a member",
        "delete",
        lambda w: f"/api/members/{_membership(w, 'member').pk}/",
        _status(204, 204, 204, 403, 404),
        effect=lambda w: not Membership.objects.filter(user__username="member").exists(),
    ),
    Case(
        "remove a foreign owner",
        "delete",
        lambda w: f"/api/members/{_membership(w, 'globex-owner').pk}/",
        _status(400, 404, 404, 404, 404),  # even a superuser cannot leave a team without an owner
    ),
    # Keys: members see and manage their own; owners and tenant admins all of the team's.
    Case("read member's key", "get", lambda w: f"/api/keys/{w.keys['member'].pk}/", _status(200, 200, 200, 200, 404)),
    Case("read owner's key", "get", lambda w: f"/api/keys/{w.keys['owner'].pk}/", _status(200, 200, 200, 404, 404)),
    Case("read sibling key", "get", lambda w: f"/api/keys/{w.keys['sibling'].pk}/", _status(200, 200, 404, 404, 404)),
    Case("read foreign key", "get", lambda w: f"/api/keys/{w.keys['foreign'].pk}/", _status(200, 404, 404, 404, 404)),
    Case(
        "create a key in own team",
        "post",
        lambda w: "/api/keys/",
        _status(201, 201, 201, 201, 403),
        body=lambda w: {"team": w.team.pk, "name": "new"},
        effect=lambda w: ApiKey.objects.filter(name="new").exists(),
    ),
    Case(
        "create a key in a sibling team",
        "post",
        lambda w: "/api/keys/",
        _status(201, 201, 400, 400, 403),
        body=lambda w: {"team": w.sibling.pk, "name": "new"},
        effect=lambda w: ApiKey.objects.filter(name="new").exists(),
    ),
    Case(
        "create a key in a foreign team",
        "post",
        lambda w: "/api/keys/",
        _status(201, 400, 400, 400, 403),
        body=lambda w: {"team": w.foreign.pk, "name": "new"},
        effect=lambda w: ApiKey.objects.filter(name="new").exists(),
    ),
    Case(
        "edit member's key",
        "patch",
        lambda w: f"/api/keys/{w.keys['member'].pk}/",
        _status(200, 200, 200, 200, 404),
        body=lambda w: {"rpm_limit": 5},
        effect=lambda w: ApiKey.objects.get(pk=w.keys["member"].pk).rpm_limit == 5,
    ),
    Case(
        "edit owner's key",
        "patch",
        lambda w: f"/api/keys/{w.keys['owner'].pk}/",
        _status(200, 200, 200, 404, 404),
        body=lambda w: {"rpm_limit": 5},
        effect=lambda w: ApiKey.objects.get(pk=w.keys["owner"].pk).rpm_limit == 5,
    ),
    Case(
        "revoke foreign key",
        "delete",
        lambda w: f"/api/keys/{w.keys['foreign'].pk}/",
        _status(204, 404, 404, 404, 404),
        effect=lambda w: ApiKey.objects.get(pk=w.keys["foreign"].pk).revoked_at is not None,
    ),
    Case(
        "revoke owner's key",
        "delete",
        lambda w: f"/api/keys/{w.keys['owner'].pk}/",
        _status(204, 204, 204, 404, 404),
        effect=lambda w: ApiKey.objects.get(pk=w.keys["owner"].pk).revoked_at is not None,
    ),
    Case(
        "rotate sibling key",
        "post",
        lambda w: f"/api/keys/{w.keys['sibling'].pk}/rotate/",
        _status(201, 201, 404, 404, 404),
        body=lambda w: {},
        effect=lambda w: ApiKey.objects.get(pk=w.keys["sibling"].pk).revoked_at is not None,
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_api_matrix(world, case, role):
    client = api(world, role)
    body = case.body(world) if case.body else None
    response = getattr(client, case.method)(case.path(world), body, format="json")
    expected = case.expected[role]
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert isinstance(response.json(), dict)  # DRF's shape: {"detail": ...} or field → messages
        if expected in (403, 404):
            assert set(response.json()) == {"detail"}
    if case.effect is not None:
        assert case.effect(world) == (expected < 300), "the database must change exactly when allowed"

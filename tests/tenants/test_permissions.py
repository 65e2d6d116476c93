"""The role rules every web surface relies on."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from tenants import permissions
from tenants.models import Membership, TenantRole
from tests.factories import make_key, make_team

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    users = {
        name: get_user_model().objects.create_user(name, password="pw-for-tests-only")
        for name in ("admin", "finance", "owner", "member", "outsider")
    }
    users["root"] = get_user_model().objects.create_superuser("root", password="pw-for-tests-only")
    team = make_team("acme", "web")
    sibling = make_team("acme", "data")
    foreign = make_team("globex", "web")
    TenantRole.objects.create(tenant=team.tenant, user=users["admin"], role=TenantRole.Role.ADMIN)
    TenantRole.objects.create(tenant=team.tenant, user=users["finance"], role=TenantRole.Role.FINANCE)
    Membership.objects.create(team=team, user=users["owner"], role=Membership.Role.OWNER)
    Membership.objects.create(team=team, user=users["member"], role=Membership.Role.MEMBER)
    keys = {
        "owner": make_key(team, created_by=users["owner"])[0],
        "member": make_key(team, created_by=users["member"])[0],
        "sibling": make_key(sibling)[0],
        "foreign": make_key(foreign)[0],
    }
    return users, team, sibling, foreign, keys


def test_tenant_roles(world):
    users, team, _sibling, foreign, _ = world
    assert set(permissions.administered_tenants(users["admin"])) == {team.tenant}
    assert not permissions.administered_tenants(users["finance"]).exists()
    assert set(permissions.reportable_tenants(users["finance"])) == {team.tenant}
    assert set(permissions.reportable_tenants(users["root"])) == {team.tenant, foreign.tenant}
    assert not permissions.reportable_tenants(AnonymousUser()).exists()


def test_team_visibility(world):
    users, team, sibling, _foreign, _ = world
    assert set(permissions.visible_teams(users["admin"])) == {team, sibling}
    assert set(permissions.visible_teams(users["member"])) == {team}
    assert set(permissions.managed_teams(users["member"])) == set()
    assert set(permissions.managed_teams(users["owner"])) == {team}
    assert not permissions.visible_teams(users["outsider"]).exists()


def test_key_visibility_and_management(world):
    users, team, _, _, keys = world
    assert set(permissions.visible_keys(users["owner"])) == {keys["owner"], keys["member"]}
    assert set(permissions.visible_keys(users["member"])) == {keys["member"]}
    assert set(permissions.visible_keys(users["admin"])) == {keys["owner"], keys["member"], keys["sibling"]}
    assert permissions.can_manage_key(users["owner"], keys["member"])
    assert permissions.can_manage_key(users["member"], keys["member"])
    assert not permissions.can_manage_key(users["member"], keys["owner"])
    assert not permissions.can_manage_key(users["outsider"], keys["member"])
    assert not permissions.can_manage_key(users["admin"], keys["foreign"])
    assert permissions.can_create_key(users["member"], team)
    assert not permissions.can_create_key(users["outsider"], team)

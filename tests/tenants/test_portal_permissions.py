"""The role rules the portal added to tenants.permissions."""

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
        name: get_user_model().objects.create_user(name) for name in ("admin", "owner", "member", "leaver", "outsider")
    }
    users["root"] = get_user_model().objects.create_superuser("root")
    team, foreign = make_team("acme", "web"), make_team("globex", "web")
    TenantRole.objects.create(tenant=team.tenant, user=users["admin"], role=TenantRole.Role.ADMIN)
    Membership.objects.create(team=team, user=users["owner"], role=Membership.Role.OWNER)
    Membership.objects.create(team=team, user=users["member"], role=Membership.Role.MEMBER)
    keys = [
        make_key(team, created_by=users["owner"])[0],
        make_key(team, created_by=users["member"])[0],
        make_key(team, created_by=users["leaver"])[0],  # created by someone no longer in the team
        make_key(team)[0],
        make_key(foreign, created_by=users["outsider"])[0],
    ]
    return users, team, keys


def test_manageable_keys_is_the_queryset_twin_of_can_manage_key(world):
    users, _, keys = world
    for user in [*users.values(), AnonymousUser()]:
        expected = {key for key in keys if permissions.can_manage_key(user, key)}
        assert set(permissions.manageable_keys(user)) == expected, user


def test_only_managers_see_the_whole_teams_usage(world):
    users, team, _ = world
    assert {name for name, user in users.items() if permissions.can_see_team_usage(user, team)} == {
        "admin",
        "owner",
        "root",
    }

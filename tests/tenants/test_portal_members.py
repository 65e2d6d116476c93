"""Team members in the portal: owners manage them, a team always keeps an owner."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tenants import services
from tenants.models import Membership, TenantRole
from tests.factories import make_team

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    users = {
        name: get_user_model().objects.create_user(name, email=f"{name}@example.com")
        for name in ("owner", "member", "newcomer", "outsider", "tenantadmin")
    }
    team, foreign = make_team("acme", "web"), make_team("globex", "web")
    # A person of acme in none of web's rosters: only the tenant's own people can be added by name.
    Membership.objects.create(team=make_team("acme", "ops"), user=users["newcomer"], role=Membership.Role.MEMBER)
    memberships = {
        "owner": Membership.objects.create(team=team, user=users["owner"], role=Membership.Role.OWNER),
        "member": Membership.objects.create(team=team, user=users["member"], role=Membership.Role.MEMBER),
        "outsider": Membership.objects.create(team=foreign, user=users["outsider"], role=Membership.Role.OWNER),
    }
    TenantRole.objects.create(tenant=team.tenant, user=users["tenantadmin"], role=TenantRole.Role.ADMIN)
    return users, team, foreign, memberships


def test_owners_add_members_by_username_or_email(client, world):
    users, team, _, _ = world
    client.force_login(users["owner"])
    url = reverse("portal:member_list", args=[team.pk])
    response = client.post(url, {"user": "NEWCOMER@example.com", "role": "member"}, follow=True)
    assert "newcomer is now member" in response.content.decode()
    assert Membership.objects.get(team=team, user=users["newcomer"]).role == "member"
    form = client.post(url, {"user": "newcomer", "role": "owner"}).context["form"]
    assert "already a member" in str(form.errors["user"])
    form = client.post(url, {"user": "nobody", "role": "member"}).context["form"]
    assert "user" in form.errors


def test_adding_does_not_tell_whether_an_account_exists_outside_the_tenant(client, world):
    users, team, _, _ = world
    client.force_login(users["owner"])
    url = reverse("portal:member_list", args=[team.pk])
    errors = {
        str(client.post(url, {"user": name, "role": "member"}).context["form"].errors["user"])
        for name in ("outsider", "outsider@example.com", "nobody", "nobody@example.com")  # globex's; no account
    }
    assert len(errors) == 1 and "No one in this tenant" in errors.pop()
    assert not Membership.objects.filter(team=team, user=users["outsider"]).exists()


def test_members_see_the_team_but_cannot_change_it(client, world):
    users, team, _, memberships = world
    client.force_login(users["member"])
    url = reverse("portal:member_list", args=[team.pk])
    page = client.get(url)
    assert page.status_code == 200 and "owner" in page.content.decode()
    assert reverse("portal:member_remove", args=[memberships["owner"].pk]) not in page.content.decode()
    assert client.post(url, {"user": "newcomer", "role": "owner"}).status_code == 403
    assert (
        client.post(reverse("portal:member_role", args=[memberships["member"].pk]), {"role": "owner"}).status_code
        == 403
    )
    assert client.post(reverse("portal:member_remove", args=[memberships["owner"].pk])).status_code == 403
    assert Membership.objects.get(pk=memberships["member"].pk).role == "member"
    assert Membership.objects.filter(team=team).count() == 2


def test_memberships_of_other_teams_are_404(client, world):
    users, _, foreign, memberships = world
    client.force_login(users["owner"])
    assert client.get(reverse("portal:member_list", args=[foreign.pk])).status_code == 404
    assert (
        client.post(reverse("portal:member_role", args=[memberships["outsider"].pk]), {"role": "member"}).status_code
        == 404
    )
    assert client.post(reverse("portal:member_remove", args=[memberships["outsider"].pk])).status_code == 404
    assert Membership.objects.get(pk=memberships["outsider"].pk).role == "owner"


def test_owners_change_roles_and_remove_members(client, world):
    users, _team, _, memberships = world
    client.force_login(users["owner"])
    client.post(reverse("portal:member_role", args=[memberships["member"].pk]), {"role": "owner"})
    assert Membership.objects.get(pk=memberships["member"].pk).role == "owner"
    assert client.get(reverse("portal:member_remove", args=[memberships["member"].pk])).status_code == 200
    client.post(reverse("portal:member_remove", args=[memberships["member"].pk]))
    assert not Membership.objects.filter(pk=memberships["member"].pk).exists()


def test_the_last_owner_cannot_step_down_or_be_removed(client, world):
    users, _team, _, memberships = world
    client.force_login(users["owner"])
    response = client.post(
        reverse("portal:member_role", args=[memberships["owner"].pk]), {"role": "member"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    response = client.post(reverse("portal:member_remove", args=[memberships["owner"].pk]), follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.get(pk=memberships["owner"].pk).role == "owner"


def test_tenant_admins_manage_members_without_being_members(client, world):
    users, team, _, memberships = world
    client.force_login(users["tenantadmin"])
    client.post(reverse("portal:member_list", args=[team.pk]), {"user": "newcomer", "role": "owner"})
    client.post(reverse("portal:member_remove", args=[memberships["owner"].pk]))
    assert set(team.memberships.values_list("user__username", "role")) == {("newcomer", "owner"), ("member", "member")}


def test_membership_services_guard_the_last_owner():
    team = make_team("acme", "solo")
    user = get_user_model().objects.create_user("solo")
    membership = services.membership_add(team=team, user=user, role=Membership.Role.OWNER)
    with pytest.raises(services.LastOwnerError):
        services.membership_change_role(membership=membership, role=Membership.Role.MEMBER)
    with pytest.raises(services.LastOwnerError):
        services.membership_remove(membership=membership)
    second = services.membership_add(team=team, user=get_user_model().objects.create_user("two"), role="owner")
    services.membership_change_role(membership=membership, role=Membership.Role.MEMBER)
    services.membership_remove(membership=membership)
    assert list(team.memberships.all()) == [second]

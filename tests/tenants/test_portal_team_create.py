"""Starting a team (and, for superusers, its tenant) from the portal."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import Membership, Team, Tenant, TenantRole
from tests.factories import make_team

pytestmark = pytest.mark.django_db


def signed_in(username: str, **fields: object) -> tuple[Client, object]:
    user = get_user_model().objects.create_user(username, **fields)
    client = Client()
    client.force_login(user)
    return client, user


def test_a_superuser_on_a_fresh_install_creates_tenant_and_team_and_owns_it():
    client, root = signed_in("root", is_superuser=True, is_staff=True)
    page = client.get("/portal/").content.decode()
    assert "Create a tenant and team" in page
    response = client.post("/portal/teams/new/", {"tenant": "", "tenant_name": "Acme Corp", "team_name": "Web"})
    team = Team.objects.get(tenant__slug="acme-corp", slug="web")
    assert response.status_code == 302
    assert response["Location"] == f"/portal/teams/{team.pk}/keys/new/"
    assert team.tenant.name == "Acme Corp"
    assert Membership.objects.get(team=team).user == root
    assert Membership.objects.get(team=team).role == Membership.Role.OWNER


def test_a_tenant_admin_creates_teams_only_in_their_tenant():
    client, boss = signed_in("boss")
    acme = make_team("acme", "web").tenant
    globex = make_team("globex", "web").tenant
    TenantRole.objects.create(tenant=acme, user=boss, role=TenantRole.Role.ADMIN)
    assert client.post("/portal/teams/new/", {"tenant": globex.pk, "team_name": "Ops"}).status_code == 200
    assert not Team.objects.filter(tenant=globex, slug="ops").exists()
    # A tenant admin cannot start a tenant: without a tenant the form refuses.
    assert client.post("/portal/teams/new/", {"tenant_name": "Mine", "team_name": "Ops"}).status_code == 200
    assert not Tenant.objects.filter(slug="mine").exists()
    assert client.post("/portal/teams/new/", {"tenant": acme.pk, "team_name": "Ops"}).status_code == 302
    assert Team.objects.filter(tenant=acme, slug="ops").exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"tenant_name": "", "team_name": "Web"}, "tenant_name", "Name the new tenant"),
        ({"tenant_name": "Acme", "team_name": "Web"}, "tenant_name", "A tenant with this name exists"),
        ({"tenant_name": "New", "team_name": "!!!"}, "team_name", "at least one letter or digit"),
        ({"tenant": "EXISTING", "team_name": "web"}, "team_name", "already has a team with this name"),
    ],
)
def test_it_explains_each_invalid_team_form(data, field, message):
    client, _ = signed_in("root", is_superuser=True, is_staff=True)
    existing = make_team("acme", "web")
    data = {k: (existing.tenant.pk if v == "EXISTING" else v) for k, v in data.items()}
    response = client.post("/portal/teams/new/", data)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert Team.objects.count() == 1


def test_a_plain_member_cannot_start_a_team():
    client, user = signed_in("dev")
    Membership.objects.create(team=make_team("acme", "web"), user=user)
    assert client.get("/portal/teams/new/").status_code == 403
    assert client.post("/portal/teams/new/", {"tenant_name": "X", "team_name": "Y"}).status_code == 403
    assert "New team" not in client.get("/portal/").content.decode()

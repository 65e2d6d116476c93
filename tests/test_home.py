"""The landing page at ``/``: links, the IDE base URL, provider health, and the next step per user."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from providers.models import ProviderHealth
from tenants.models import Membership, TenantRole
from tests.factories import make_key, make_provider, make_team

pytestmark = pytest.mark.django_db


def signed_in(username: str, **fields: object) -> Client:
    user = get_user_model().objects.create_user(username, **fields)
    client = Client()
    client.force_login(user)
    return client


def test_it_shows_an_anonymous_visitor_the_links_base_url_and_login():
    response = Client().get("/", HTTP_HOST="127.0.0.1:8123")
    assert response.status_code == 200
    html = response.content.decode()
    for link in ('href="/portal/"', 'href="/reports/"', 'href="/admin/"', 'href="/api/docs/"'):
        assert link in html
    assert "http://127.0.0.1:8123/v1" in html
    assert 'href="/accounts/login/?next=/"' in html
    assert "Your teams" not in html


def test_it_shows_each_enabled_provider_with_its_latest_probe():
    ok = make_provider("http://127.0.0.1:9/v1", name="alpha")
    ProviderHealth.objects.create(provider=ok, status=ProviderHealth.Status.DEGRADED)
    make_provider("http://127.0.0.1:9/v1", name="beta")
    make_provider("http://127.0.0.1:9/v1", name="gamma", enabled=False)
    html = Client().get("/").content.decode()
    table = html[html.index('data-testid="provider-health"') :]
    assert "alpha" in table and "degraded" in table
    assert "beta" in table and "unknown" in table
    assert "gamma" not in table


def test_it_leads_a_superuser_without_tenants_to_create_one():
    html = signed_in("root", is_superuser=True, is_staff=True).get("/").content.decode()
    assert 'href="/portal/teams/new/"' in html
    assert "Create your first tenant and team" in html


def test_it_leads_a_team_member_without_keys_to_create_one():
    client = signed_in("dev")
    team = make_team("acme", "web")
    Membership.objects.create(team=team, user=get_user_model().objects.get(username="dev"))
    html = client.get("/").content.decode()
    assert f'href="/portal/teams/{team.pk}/keys/new/"' in html
    assert "acme / web" in html


def test_it_points_a_user_with_keys_at_their_usage():
    client = signed_in("dev")
    user = get_user_model().objects.get(username="dev")
    team = make_team("acme", "web")
    Membership.objects.create(team=team, user=user)
    make_key(team, created_by=user)
    html = client.get("/").content.decode()
    assert "You have keys" in html
    assert "1 active key" in html


def test_it_tells_a_user_without_teams_or_rights_whom_to_ask():
    html = signed_in("nobody").get("/").content.decode()
    assert "Ask a team owner or your platform admin" in html
    assert "/portal/teams/new/" not in html


def test_it_offers_a_tenant_admin_without_teams_to_start_one():
    client = signed_in("boss")
    tenant = make_team("acme", "web").tenant
    tenant.teams.all().delete()
    TenantRole.objects.create(tenant=tenant, user=get_user_model().objects.get(username="boss"), role="admin")
    assert 'href="/portal/teams/new/"' in client.get("/").content.decode()


def test_it_answers_head_and_refuses_post():
    assert Client().head("/").status_code == 200
    assert Client().post("/").status_code == 405


def test_every_link_on_the_landing_page_works_for_a_superuser():
    """A fresh `make run` shows a landing page with working links (issue 18's "Done when")."""
    import re

    client = signed_in("root", is_superuser=True, is_staff=True)
    html = client.get("/").content.decode()
    links = sorted(set(re.findall(r'href="(/[^"#]*)"', html)) - {"/static/css/gateway.css"})
    assert {"/portal/", "/reports/", "/admin/", "/api/docs/", "/api/schema/", "/health"} <= set(links)
    broken = {}
    for link in links:
        status = client.get(link).status_code
        if status >= 400 and not (link == "/metrics" and status == 403):  # /metrics: token or allowed network
            broken[link] = status
    assert broken == {}

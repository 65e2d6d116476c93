"""The admin's "Try routing" page: the gateway's decision for a pasted request, without an upstream call."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from gateway_platform.config import version as config_version
from tenants.models import TenantRole
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db

URL = "/admin/routing/try/"


@pytest.fixture
def setup():
    provider = make_provider("http://127.0.0.1:9", name="unreachable")  # never called
    cheap = make_model(provider, name="try-cheap")
    smart = make_model(provider, name="try-smart")
    make_tier("try_simple", [cheap], complexity_max=0.4)
    make_tier("try_complex", [smart, cheap], complexity_max=1.0)
    config_version.bump()
    key, _ = make_key(make_team("acme", "web"))
    foreign_key, _ = make_key(make_team("globex", "web"))
    root = get_user_model().objects.create_superuser("root", email="", password=None)
    return key, foreign_key, root


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_shows_the_tier_and_models_of_a_named_tier(setup):
    key, _, root = setup
    response = client_for(root).post(URL, {"api_key": key.pk, "model": "try_complex", "prompt": "hello"})
    assert response.status_code == 200
    result = response.context["result"]
    assert result.error == "" and result.tier == "try_complex"
    assert [d["name"] for d in result.deployments][:2] == ["try-smart", "try-cheap"]
    assert "try-smart" in response.content.decode()


def test_it_scores_auto_requests_and_explains_them(setup):
    key, _, root = setup
    body = {"model": "auto", "messages": [{"role": "user", "content": "Refactor this module and add tests " * 20}]}
    response = client_for(root).post(URL, {"api_key": key.pk, "model": "auto", "request_json": json.dumps(body)})
    result = response.context["result"]
    # A long refactoring request scores above try_simple's band edge (0.4): it goes to try_complex.
    assert result.error == "" and result.tier == "try_complex"
    assert isinstance(result.decision.get("score"), float) and result.decision["score"] > 0.4
    assert result.decision.get("features") is not None
    assert result.cache.get("mode")


def test_it_shows_the_error_the_gateway_would_answer(setup):
    key, _, root = setup
    response = client_for(root).post(URL, {"api_key": key.pk, "model": "no-such-model", "prompt": "hi"})
    assert response.context["result"].error.startswith("400:")


def test_tenant_admins_try_only_their_keys_and_others_are_refused(setup):
    key, foreign_key, _ = setup
    tenant_admin = get_user_model().objects.create_user("ta", is_staff=True)
    TenantRole.objects.create(tenant=key.team.tenant, user=tenant_admin, role=TenantRole.Role.ADMIN)
    client = client_for(tenant_admin)
    refused = client.post(URL, {"api_key": foreign_key.pk, "model": "try_simple", "prompt": "hi"})
    assert refused.status_code == 200 and "api_key" in refused.context["form"].errors
    allowed = client.post(URL, {"api_key": key.pk, "model": "try_simple", "prompt": "hi"})
    assert allowed.context["result"].tier == "try_simple"
    drifter = get_user_model().objects.create_user("drifter", is_staff=True)
    assert client_for(drifter).get(URL).status_code == 403


def test_the_page_is_listed_in_the_admin(setup):
    _, _, root = setup
    index = client_for(root).get("/admin/").content.decode()
    assert URL in index


def test_tenant_admins_find_the_page_in_the_admin(setup):
    key, _, _ = setup
    tenant_admin = get_user_model().objects.create_user("ta", is_staff=True)
    TenantRole.objects.create(tenant=key.team.tenant, user=tenant_admin, role=TenantRole.Role.ADMIN)
    assert URL in client_for(tenant_admin).get("/admin/").content.decode()

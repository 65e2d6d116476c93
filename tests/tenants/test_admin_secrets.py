"""New secrets in the admin are shown once on their own page, never through the messages framework."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tenants.keys import hash_secret
from tenants.models import ApiKey, PersonalToken
from tests.tenants.world import build_world

pytestmark = pytest.mark.django_db


def _no_secret_stored(client: Client, response: object, secret: str) -> None:
    assert all(secret not in morsel.value for morsel in client.cookies.values())
    assert all(secret not in str(m) for m in get_messages(response.wsgi_request))  # type: ignore[attr-defined]
    session = client.session
    assert secret not in str(dict(session.items()))
    # The next page does not show it again either.
    assert secret not in client.get("/admin/").content.decode()


def test_a_new_api_key_secret_is_shown_once_on_its_own_page():
    world = build_world()
    client = Client()
    client.force_login(world.users["tenant_admin"])
    response = client.post(
        "/admin/tenants/apikey/add/",
        {
            "team": world.team.pk,
            "name": "laptop",
            "budgets-TOTAL_FORMS": "0",
            "budgets-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200, getattr(response, "context", None) and response.context.get("errors")
    key = ApiKey.objects.get(name="laptop")
    secret = response.context["secret"]
    assert hash_secret(secret) == key.key_hash and secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    _no_secret_stored(client, response, secret)


def test_a_new_personal_token_is_shown_once_on_its_own_page():
    world = build_world()
    client = Client()
    client.force_login(world.users["root"])
    response = client.post("/admin/tenants/personaltoken/add/", {"name": "ci"})
    assert response.status_code == 200
    secret = response.context["secret"]
    token = PersonalToken.objects.get(name="ci")
    assert secret.startswith(token.prefix)
    _no_secret_stored(client, response, secret)

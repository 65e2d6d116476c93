"""Web security of the portal: CSRF, one-time secrets, login throttling (django-axes), headers."""

from __future__ import annotations

import logging
import re

import httpx2
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tenants.models import ApiKey, Membership
from tests.factories import make_team

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r"gw-[A-Za-z0-9_-]{43}")
PASSWORD = "pw-for-tests-only"


@pytest.fixture
def owner():
    user = get_user_model().objects.create_user("lead", password=PASSWORD)
    Membership.objects.create(team=make_team("acme", "web"), user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def team(owner):
    return owner.memberships.get().team


def test_posts_without_a_csrf_token_are_refused(owner, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse("portal:key_create", args=[team.pk]), {"name": "laptop"})
    assert response.status_code == 403
    assert not ApiKey.objects.exists()
    # The form itself carries a token, and posting it back works.
    page = client.get(reverse("portal:key_create", args=[team.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        reverse("portal:key_create", args=[team.pk]), {"name": "laptop", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 200 and SECRET_RE.search(response.content.decode())


def test_the_secret_is_never_logged_stored_or_shown_again(client, owner, team, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(owner)
    response = client.post(reverse("portal:key_create", args=[team.pk]), {"name": "laptop", "budget_usd": "5"})
    secret = SECRET_RE.search(response.content.decode()).group(0)
    key = ApiKey.objects.get()
    rotated = client.post(reverse("portal:key_rotate", args=[key.pk]), {"grace": "1h"})
    new_secret = SECRET_RE.search(rotated.content.decode()).group(0)
    pages = [
        reverse("portal:team_list"),
        reverse("portal:key_list", args=[team.pk]),
        reverse("portal:key_list", args=[team.pk]) + f"?q={key.prefix}",
        reverse("portal:usage", args=[team.pk]),
        reverse("portal:member_list", args=[team.pk]),
        reverse("portal:key_rotate", args=[key.pk]),
        reverse("portal:key_revoke", args=[key.pk]),
        reverse("portal:key_create", args=[team.pk]),
    ]
    for url in pages:
        body = client.get(url).content.decode()
        assert secret not in body and new_secret not in body, url
        assert not SECRET_RE.search(body), url
    session = client.session
    assert all(secret not in str(value) and new_secret not in str(value) for value in session.values())
    for record in caplog.records:
        text = record.getMessage() + " " + repr(record.__dict__)
        assert secret not in text and new_secret not in text
    assert any(record.getMessage() == "API key created in the portal" for record in caplog.records)


def test_portal_pages_send_protective_headers(client, owner, team):
    client.force_login(owner)
    response = client.get(reverse("portal:key_list", args=[team.pk]))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    secret_page = client.post(reverse("portal:key_create", args=[team.pk]), {"name": "laptop"})
    assert "no-store" in secret_page["Cache-Control"] and "private" in secret_page["Cache-Control"]


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_repeated_failed_logins_are_locked_out(client, owner, settings, login_url):
    settings.AXES_FAILURE_LIMIT = 3
    owner.is_staff = True
    owner.save()
    for _ in range(2):
        response = client.post(login_url, {"username": "lead", "password": "wrong"})
        assert response.status_code == 200  # the form again, with an error
    response = client.post(login_url, {"username": "lead", "password": "wrong"})
    assert response.status_code == 429
    assert "Too many failed log-in attempts" in response.content.decode()
    # Locked out: even the right password is refused now.
    response = client.post(login_url, {"username": "lead", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_successful_login_resets_the_failure_count(client, owner, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        client.post("/accounts/login/", {"username": "lead", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "lead", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/portal/"
    client.post(reverse("logout"))
    for _ in range(2):
        assert client.post("/accounts/login/", {"username": "lead", "password": "wrong"}).status_code == 200


def test_logout_is_post_only(client, owner):
    client.force_login(owner)
    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session


@pytest.mark.django_db(transaction=True)
def test_the_lockout_works_on_the_real_server(gateway_url):
    """Axes under Daphne (the ASGI stack real users hit), with the default limit."""
    get_user_model().objects.create_user("victim", password=PASSWORD)
    with httpx2.Client(base_url=gateway_url, timeout=10) as http:
        statuses = []
        for _ in range(6):
            page = http.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            response = http.post(
                "/accounts/login/", data={"username": "victim", "password": "wrong", "csrfmiddlewaretoken": token}
            )
            statuses.append(response.status_code)
    assert statuses[:4] == [200] * 4 and statuses[4:] == [429, 429]


def test_users_change_their_password_in_the_portal(client, owner):
    client.force_login(owner)
    url = reverse("portal:password_change")
    assert 'for="id_old_password">Old password</label>' in client.get(url).content.decode()
    new = "a-brand-new-passphrase"
    response = client.post(url, {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert response.status_code == 302 and response.url == reverse("portal:password_change_done")
    owner.refresh_from_db()
    assert owner.check_password(new)

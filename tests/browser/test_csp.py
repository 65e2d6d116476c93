"""Admin, portal, reports and API docs work under the Content-Security-Policy: nothing is blocked."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tenants.models import Membership
from tests.factories import make_key, make_team

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-browser-test-password"


def test_pages_run_under_the_policy_without_violations(browser, gateway_url):
    team = make_team("cspco", "web")
    root = get_user_model().objects.create_superuser("csp-admin", "a@example.com", PASSWORD)
    Membership.objects.create(team=team, user=root, role=Membership.Role.OWNER)
    make_key(team)
    page = browser.new_page(base_url=gateway_url)  # type: ignore[attr-defined]
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("csp-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    for path in (
        "/admin/",
        "/admin/tenants/apikey/add/",
        "/admin/routing/tier/",
        f"/portal/teams/{team.pk}/",
        "/reports/",
        "/api/docs/",
    ):
        response = page.goto(path)
        assert response is not None and response.status < 400, path
        assert "content-security-policy" in response.headers, path
    page.wait_for_selector("#swagger-ui .info", timeout=15000)  # the docs' scripts ran
    assert violations == []
    page.close()

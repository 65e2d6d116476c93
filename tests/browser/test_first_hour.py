"""The first hour of a new user, in real headless Chromium against the real server (issue 18).

A superuser on a fresh install: logs in from the landing page, creates a tenant and team
and its first key in the portal, copies the curl snippet, runs it in a shell, and finds the
request in the team's usage and in /reports/. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import subprocess

import pytest
from django.contrib.auth import get_user_model

from billing import usage
from billing.models import UsageEvent
from tenants.models import ApiKey, Team, Tenant
from tests.factories import make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-first-hour-password"


@pytest.fixture
def fresh_install(mock_upstream_url: str) -> None:
    """What `make run` leaves: providers, a model and a tier, a superuser, and no tenant at all."""
    usage.drain()
    UsageEvent.objects.all().delete()
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    make_tier("simple_ops", [make_model(provider, name="mock-small", upstream_model="mock-small-1")])
    get_user_model().objects.create_superuser("admin", email="admin@example.com", password=PASSWORD)
    assert not Tenant.objects.exists()


def test_the_first_hour(browser, gateway_url, fresh_install, drained_events, screenshot):
    context = browser.new_context(base_url=gateway_url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway_url)
    page = context.new_page()

    # The landing page: what this is, where things are, the base URL, provider health, the login.
    page.goto("/")
    page.get_by_role("heading", name="LLM gateway").wait_for()
    assert page.get_by_test_id("base-url").inner_text() == f"{gateway_url}/v1"
    assert "mockai" in page.get_by_test_id("provider-health").inner_text()
    for name in ("Portal", "Reports", "Admin", "API docs"):
        assert page.get_by_role("link", name=name, exact=True).count() >= 1
    screenshot(page, "30-landing-anonymous")
    page.get_by_role("link", name="Log in", exact=True).last.click()
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Back on the landing page, signed in: no team yet, so the next step is to create one.
    page.get_by_role("heading", name="Your teams").wait_for()
    screenshot(page, "31-landing-fresh-superuser")
    page.get_by_role("link", name="Create your first tenant and team").click()
    page.get_by_label("Tenant", exact=True).select_option(label="A new tenant…")
    page.get_by_label("New tenant's name").fill("Acme")
    page.get_by_label("Team name").fill("Web")
    screenshot(page, "32-new-team")
    page.get_by_role("button", name="Create team").click()

    # The team's first key.
    page.get_by_role("heading", name="New API key").wait_for()
    team = Team.objects.get(tenant__slug="acme", slug="web")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("heading", name="Key “laptop” created").wait_for()
    screenshot(page, "33-first-key")

    # Copy the curl snippet and run it, as a user would paste it into a shell.
    page.get_by_role("button", name="Copy the curl snippet").click()
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet.startswith(f"curl {gateway_url}/v1/chat/completions")
    result = subprocess.run(["bash", "-c", snippet + " -s -i"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HTTP/1.1 200" in result.stdout and "Mock reply to: Hello" in result.stdout
    key = ApiKey.objects.get(team=team, name="laptop")
    [event] = drained_events(1, api_key=key)
    assert event.status_code == 200

    # The request in the team's usage...
    page.goto(f"/portal/teams/{team.pk}/usage/")
    assert page.locator(".stat", has_text="Requests").locator("dd").inner_text() == "1"
    assert "laptop" in page.get_by_role("table", name="Per key").inner_text()
    screenshot(page, "34-usage")

    # ... and in the reports (rollups are Celery's job: run the task the beat runs every minute).
    from billing.tasks import rollup_current_hour

    rollup_current_hour()
    page.goto("/reports/")
    page.get_by_role("heading", name="Usage and billing").wait_for()
    screenshot(page, "35-reports")
    overview = page.locator("main").inner_text()
    assert "Nothing to report yet" not in overview
    top_keys = page.locator("section.table-card", has_text="keys by cost").locator("table").inner_text(timeout=5000)
    assert "laptop" in top_keys and "Web" in top_keys
    context.close()

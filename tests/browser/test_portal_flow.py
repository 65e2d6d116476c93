"""A team lead and a platform admin in real headless Chromium, against the real server.

Screenshots of every page land in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re

import openai
import pytest
from django.contrib.auth import get_user_model

from billing import usage
from billing.models import UsageEvent
from routing.models import Tier
from tenants import keys
from tenants.models import ApiKey, Membership
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-browser-test-password"
SECRET_RE = re.compile(r"gw-[A-Za-z0-9_-]{43}")


@pytest.fixture
def world(mock_upstream_url: str) -> dict[str, object]:
    # Records other tests left in the Redis usage stream would land on this test's ids: clear them first.
    usage.drain()
    UsageEvent.objects.all().delete()
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    small = make_model(provider, name="mock-small", upstream_model="mock-small-1")
    make_model(provider, name="mock-large", upstream_model="mock-large-1")
    tier = make_tier("simple_ops", [small])
    team = make_team("acme", "web")
    lead = get_user_model().objects.create_user("lead", email="lead@example.com", password=PASSWORD)
    Membership.objects.create(team=team, user=lead, role=Membership.Role.OWNER)
    dev = get_user_model().objects.create_user("dev", email="dev@example.com")  # added as a member, never logs in
    # A person of acme (in its data team): only the tenant's own people can be added to web by name.
    Membership.objects.create(team=make_team("acme", "data"), user=dev, role=Membership.Role.MEMBER)
    get_user_model().objects.create_superuser("root", email="root@example.com", password=PASSWORD)
    return {"team": team, "tier": tier}


def chat(gateway_url: str, secret: str) -> tuple[str, str]:
    """(reply text, X-Gateway-Model) of one request through the openai SDK, never answered from the cache."""
    sdk = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="simple_ops",
        messages=[{"role": "user", "content": "hello from the browser test"}],
        extra_headers={"X-Gateway-Cache": "no-store"},
    )
    return raw.parse().choices[0].message.content or "", raw.headers["x-gateway-model"]


def assert_refused(gateway_url: str, secret: str) -> None:
    with pytest.raises(openai.PermissionDeniedError) as excinfo:
        chat(gateway_url, secret)
    assert excinfo.value.status_code == 403 and excinfo.value.code == "key_revoked"


def log_in(page, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def read_secret(page) -> str:
    secret = page.locator("#secret").inner_text().strip()
    assert SECRET_RE.fullmatch(secret)
    return secret


def check_copy_button(page, secret: str) -> None:
    """The button puts the secret on the clipboard and says so; the text is selectable in one click.

    The context grants clipboard permissions, so reading the clipboard must work: a failure
    here is a failure of the test, not a reason to skip the check.
    """
    button = page.get_by_role("button", name="Copy", exact=True)
    assert button.is_visible()  # revealed by the script (hidden without JavaScript)
    page.evaluate("navigator.clipboard.writeText('clipboard before the click')")
    button.click()
    page.locator(".secret .copy-status", has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    # Without the script (or without a clipboard) one click selects the whole secret.
    assert page.locator("#secret").evaluate("el => getComputedStyle(el).userSelect") == "all"


def test_a_team_lead_creates_uses_rotates_and_revokes_a_key(browser, gateway_url, world, drained_events, screenshot):
    context = browser.new_context(base_url=gateway_url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway_url)
    page = context.new_page()

    page.goto("/portal/")
    assert "/accounts/login/" in page.url
    screenshot(page, "01-login")
    log_in(page, "lead")
    page.get_by_role("heading", name="Your teams").wait_for()
    screenshot(page, "02-teams")

    page.get_by_role("link", name="web", exact=True).click()
    page.get_by_text("No keys yet.").wait_for()
    screenshot(page, "03-keys-empty")

    page.get_by_role("link", name="New key").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("simple_ops").check()
    page.get_by_label("Monthly budget (USD)").fill("10")
    page.get_by_label("Requests per minute").fill("60")
    screenshot(page, "04-new-key")
    page.get_by_role("button", name="Create key").click()

    page.get_by_role("heading", name="Key “laptop” created").wait_for()
    secret = read_secret(page)
    check_copy_button(page, secret)
    screenshot(page, "05-secret")

    reply, model = chat(gateway_url, secret)
    assert reply == "Mock reply to: hello from the browser test" and model == "mock-small"
    key = ApiKey.objects.get(key_hash=keys.hash_secret(secret))
    assert len(drained_events(1, api_key=key)) == 1

    page.get_by_role("link", name="Usage", exact=True).click()
    per_key = page.get_by_role("table", name="Per key")
    assert "laptop" in per_key.inner_text() and key.prefix in per_key.inner_text()
    assert page.locator(".stat", has_text="Requests").locator("dd").inner_text() == "1"
    screenshot(page, "06-usage")

    page.get_by_role("link", name="Keys", exact=True).click()
    row = page.get_by_role("row", name=re.compile("laptop"))
    key.refresh_from_db()
    assert key.prefix in row.inner_text() and key.last_used_at is not None
    assert row.locator("td").nth(3).inner_text() == key.last_used_at.strftime("%Y-%m-%d %H:%M")  # last used
    screenshot(page, "07-keys")

    page.get_by_role("link", name="Rotate laptop").click()
    page.get_by_label("None — the old key stops working now").check()
    screenshot(page, "08-rotate")
    page.get_by_role("button", name="Rotate key").click()
    page.get_by_role("heading", name="Key “laptop” rotated").wait_for()
    rotated = read_secret(page)
    assert rotated != secret
    screenshot(page, "09-rotated")
    assert_refused(gateway_url, secret)
    assert chat(gateway_url, rotated)[0] == "Mock reply to: hello from the browser test"

    page.get_by_role("link", name="Keys", exact=True).click()
    page.get_by_role("link", name="Revoke laptop").click()
    screenshot(page, "10-revoke")
    page.get_by_role("button", name="Revoke key").click()
    page.get_by_text("is revoked").wait_for()
    screenshot(page, "11-revoked")
    assert_refused(gateway_url, rotated)
    assert page.get_by_role("link", name="Revoke laptop").count() == 0

    page.get_by_label("Search", exact=True).fill("lap")
    page.get_by_label("Status").select_option("revoked")
    page.get_by_role("button", name="Apply").click()
    assert page.locator("table.keys tbody tr").count() == 2
    screenshot(page, "12-keys-filtered")

    page.get_by_role("link", name="Members", exact=True).click()
    page.get_by_label("Username or e-mail").fill("dev@example.com")
    page.get_by_role("button", name="Add member").click()
    page.get_by_text("dev is now member of web").wait_for()
    screenshot(page, "13-members")

    page.goto("/portal/password/")
    screenshot(page, "14-password-change")
    context.close()


def test_an_admin_edits_a_tier_and_the_next_request_follows_it(browser, gateway_url, world, screenshot):
    tier: Tier = world["tier"]  # type: ignore[assignment]
    _key, secret = make_key(world["team"])  # type: ignore[arg-type]
    assert chat(gateway_url, secret)[1] == "mock-small"

    context = browser.new_context(base_url=gateway_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"/admin/routing/tier/{tier.pk}/change/")
    page.locator("#id_username").fill("root")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.locator("#id_tier_models-0-model").wait_for(state="attached")
    screenshot(page, "20-admin-tier")

    # The inline's model field is an autocomplete (select2) widget.
    page.locator("#id_tier_models-0-model + .select2 .select2-selection").click()
    page.locator(".select2-search__field").fill("mock-large")
    page.locator(".select2-results__option", has_text="mock-large").click()
    screenshot(page, "21-admin-tier-edited")
    page.locator("input[name=_save]").click()
    page.locator(".messagelist .success").wait_for()
    screenshot(page, "22-admin-tier-saved")

    assert chat(gateway_url, secret)[1] == "mock-large"
    context.close()

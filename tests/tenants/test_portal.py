"""The team portal without a browser: roles, key life cycle, forms, usage, revocation via the gateway."""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta
from decimal import Decimal

import openai
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Budget, UsageEvent
from tenants import keys
from tenants.models import ApiKey, Membership, Team
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

SECRET_RE = re.compile(r"gw-[A-Za-z0-9_-]{43}")


def make_user(name: str):
    # No password: the tests log in with force_login, and hashing one costs time.
    return get_user_model().objects.create_user(name, email=f"{name}@example.com")


@pytest.fixture
def world(db):
    """acme/web with an owner and a member, a sibling team, and a team in another tenant."""
    users = {name: make_user(name) for name in ("owner", "member", "outsider", "other")}
    web, data, foreign = make_team("acme", "web"), make_team("acme", "data"), make_team("globex", "web")
    Membership.objects.create(team=web, user=users["owner"], role=Membership.Role.OWNER)
    Membership.objects.create(team=web, user=users["member"], role=Membership.Role.MEMBER)
    Membership.objects.create(team=data, user=users["other"], role=Membership.Role.OWNER)
    Membership.objects.create(team=foreign, user=users["outsider"], role=Membership.Role.OWNER)
    provider = make_provider("http://127.0.0.1:9/v1", name="portalprov")
    model = make_model(provider, name="mock-small")
    make_tier("simple_ops", [model])
    keys_ = {
        "owner": make_key(web, created_by=users["owner"])[0],
        "member": make_key(web, created_by=users["member"])[0],
        "data": make_key(data, created_by=users["other"])[0],
        "foreign": make_key(foreign, created_by=users["outsider"])[0],
    }
    return users, {"web": web, "data": data, "foreign": foreign}, keys_


def login(client, user):
    client.force_login(user)
    return client


def create_key(client, team, **fields) -> str:
    data = {"name": "laptop", **fields}
    response = client.post(reverse("portal:key_create", args=[team.pk]), data)
    assert response.status_code == 200, response.content.decode()[:2000]
    match = SECRET_RE.search(response.content.decode())
    assert match, "the creation response shows the secret"
    return match.group(0)


# --- roles and id guessing --------------------------------------------------------------


def test_it_sends_anonymous_users_to_the_login_page(client, world):
    response = client.get(reverse("portal:team_list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_it_lists_only_the_users_teams(client, world):
    users, teams, _ = world
    body = login(client, users["member"]).get(reverse("portal:team_list")).content.decode()
    assert reverse("portal:key_list", args=[teams["web"].pk]) in body
    assert reverse("portal:key_list", args=[teams["data"].pk]) not in body
    assert reverse("portal:key_list", args=[teams["foreign"].pk]) not in body


def test_members_see_their_own_keys_and_owners_the_teams(client, world):
    users, teams, keys_ = world
    url = reverse("portal:key_list", args=[teams["web"].pk])
    body = login(client, users["member"]).get(url).content.decode()
    assert keys_["member"].prefix in body and keys_["owner"].prefix not in body
    assert reverse("portal:key_revoke", args=[keys_["member"].pk]) in body
    body = login(client, users["owner"]).get(url).content.decode()
    assert keys_["member"].prefix in body and keys_["owner"].prefix in body
    assert reverse("portal:key_revoke", args=[keys_["member"].pk]) in body


@pytest.mark.parametrize("name", ["key_list", "key_create", "usage", "member_list"])
def test_team_pages_of_other_teams_are_404(client, world, name):
    users, teams, _ = world
    login(client, users["member"])
    for team in (teams["data"], teams["foreign"]):
        assert client.get(reverse(f"portal:{name}", args=[team.pk])).status_code == 404
        assert client.post(reverse(f"portal:{name}", args=[team.pk]), {"name": "x"}).status_code == 404
    assert not ApiKey.objects.filter(name="x").exists()


@pytest.mark.parametrize("name", ["key_rotate", "key_revoke"])
def test_keys_out_of_reach_are_404_and_untouched(client, world, name):
    users, _, keys_ = world
    login(client, users["member"])
    for key in (keys_["owner"], keys_["data"], keys_["foreign"]):
        assert client.get(reverse(f"portal:{name}", args=[key.pk])).status_code == 404
        assert client.post(reverse(f"portal:{name}", args=[key.pk]), {"grace": "0"}).status_code == 404
        key.refresh_from_db()
        assert key.revoked_at is None and key.expires_at is None
    assert ApiKey.objects.count() == 4


def test_a_member_who_left_the_team_loses_their_keys_pages(client, world):
    users, teams, keys_ = world
    Membership.objects.filter(user=users["member"]).delete()
    login(client, users["member"])
    assert client.get(reverse("portal:key_list", args=[teams["web"].pk])).status_code == 404
    assert client.post(reverse("portal:key_revoke", args=[keys_["member"].pk])).status_code == 404


# --- the key list ----------------------------------------------------------------------------


def test_it_searches_and_filters_keys(client, world):
    users, teams, keys_ = world
    web = teams["web"]
    revoked, _ = make_key(web, created_by=users["owner"])
    ApiKey.objects.filter(pk=revoked.pk).update(name="old ci", revoked_at=timezone.now())
    expired, _ = make_key(web, created_by=users["member"])
    ApiKey.objects.filter(pk=expired.pk).update(name="old laptop", expires_at=timezone.now() - timedelta(days=1))
    url = reverse("portal:key_list", args=[web.pk])
    login(client, users["owner"])

    def prefixes(**params: object) -> set[str]:
        body = client.get(url, params).content.decode()
        return {key.prefix for key in ApiKey.objects.all() if key.prefix in body}

    assert prefixes() == {keys_["owner"].prefix, keys_["member"].prefix, revoked.prefix, expired.prefix}
    assert prefixes(status="revoked") == {revoked.prefix}
    assert prefixes(status="expired") == {expired.prefix}
    assert prefixes(status="active") == {keys_["owner"].prefix, keys_["member"].prefix}
    assert prefixes(q="old") == {revoked.prefix, expired.prefix}
    assert prefixes(q=expired.prefix[3:]) == {expired.prefix}
    assert prefixes(owner=users["member"].pk) == {keys_["member"].prefix, expired.prefix}
    assert prefixes(owner="not-a-number") == prefixes()  # bad filters are ignored, not a 500


def add_usage(key: ApiKey, cost: str, *, when=None, n: int = 1) -> None:
    for i in range(n):
        UsageEvent.objects.create(
            request_id=f"req-{key.pk}-{cost}-{i}-{UsageEvent.objects.count()}",
            tenant_id=key.team.tenant_id,
            team_id=key.team_id,
            api_key=key,
            endpoint="chat",
            model="mock-small",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=Decimal(cost),
            status_code=200,
            started_at=when or timezone.now(),
            finished_at=when or timezone.now(),
        )


def test_the_key_list_shows_spend_and_budget_in_a_constant_number_of_queries(client, world):
    users, teams, keys_ = world
    web = teams["web"]
    Budget.objects.create(api_key=keys_["member"], amount_usd=Decimal("20"))
    add_usage(keys_["member"], "1.25", n=2)
    add_usage(keys_["member"], "7", when=timezone.now() - timedelta(days=40))  # last month: not counted
    url = reverse("portal:key_list", args=[web.pk])
    login(client, users["owner"])
    client.get(url)  # warm up sessions and content types
    with CaptureQueriesContext(connection) as few:
        body = client.get(url).content.decode()
    assert "$2.50" in body and "$20.00" in body
    for _ in range(8):
        key, _secret = make_key(web, created_by=users["member"])
        add_usage(key, "0.5")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


# --- creating keys ---------------------------------------------------------------------------


def test_creating_a_key_shows_the_secret_once_with_snippets(client, world):
    users, teams, _ = world
    login(client, users["member"])
    response = client.post(
        reverse("portal:key_create", args=[teams["web"].pk]),
        {"name": "laptop", "allowed_models": ["simple_ops"], "budget_usd": "12.50", "rpm_limit": "30"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    secret = SECRET_RE.search(body).group(0)
    key = ApiKey.objects.get(key_hash=keys.hash_secret(secret))
    assert (key.name, key.allowed_models, key.rpm_limit, key.created_by) == (
        "laptop",
        ["simple_ops"],
        30,
        users["member"],
    )
    assert Budget.objects.get(api_key=key).amount_usd == Decimal("12.50")
    for client_name in ("Cursor", "Continue", "Open Interpreter", "Claude Code", "OpenAI SDK", "curl"):
        assert client_name in body
    assert "ANTHROPIC_BASE_URL=http://testserver" in body and "ANTHROPIC_AUTH_TOKEN=" in body
    assert "http://testserver/v1" in body and "model: simple_ops" in body
    assert body.count(secret) >= 7  # the secret box and each snippet, all in this one response


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"name": "  "}, "name"),
        ({"allowed_models": ["no-such-model"]}, "allowed_models"),
        ({"rpm_limit": "0"}, "rpm_limit"),
        ({"tpm_limit": "-5"}, "tpm_limit"),
        ({"budget_usd": "0"}, "budget_usd"),
        ({"budget_usd": "lots"}, "budget_usd"),
        ({"expires_on": "2001-01-01"}, "expires_on"),
    ],
)
def test_the_create_form_rejects_bad_input(client, world, fields, error_field):
    users, teams, _ = world
    login(client, users["member"])
    response = client.post(reverse("portal:key_create", args=[teams["web"].pk]), {"name": "laptop", **fields})
    assert response.status_code == 200
    assert error_field in response.context["form"].errors
    assert not SECRET_RE.search(response.content.decode())
    assert ApiKey.objects.count() == 4


def test_key_limits_stay_within_the_teams(client, world, monkeypatch):
    users, teams, _ = world
    web = teams["web"]
    Budget.objects.create(team=web, amount_usd=Decimal("100"))
    # A team-wide RPM limit is an optional field of Team; the form honours it when present.
    if any(field.name == "rpm_limit" for field in Team._meta.get_fields()):
        Team.objects.filter(pk=web.pk).update(rpm_limit=60)
    else:
        monkeypatch.setattr(Team, "rpm_limit", 60, raising=False)
    login(client, users["owner"])
    url = reverse("portal:key_create", args=[web.pk])
    form = client.post(url, {"name": "big", "budget_usd": "150", "rpm_limit": "61"}).context["form"]
    assert set(form.errors) == {"budget_usd", "rpm_limit"}
    create_key(client, web, name="fits", budget_usd="100", rpm_limit="60")
    key = ApiKey.objects.get(name="fits")
    assert key.rpm_limit == 60 and key.budgets.get().amount_usd == 100


def test_expiry_is_the_end_of_the_chosen_day_in_the_tenant_time_zone(client, world):
    users, teams, _ = world
    web = teams["web"]
    web.tenant.timezone = "Europe/Paris"
    web.tenant.save()
    day = (timezone.now() + timedelta(days=3)).date()
    login(client, users["owner"])
    create_key(client, web, name="temp", expires_on=day.isoformat())
    expires = ApiKey.objects.get(name="temp").expires_at
    local = timezone.localtime(expires, timezone=zoneinfo.ZoneInfo("Europe/Paris"))
    assert (local.date(), local.hour, local.minute) == (day + timedelta(days=1), 0, 0)


# --- rotating and revoking --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "delta"), [("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7))]
)
def test_rotating_keeps_the_settings_and_the_old_key_for_the_grace_period(client, world, grace, delta):
    users, _, keys_ = world
    old = keys_["member"]
    ApiKey.objects.filter(pk=old.pk).update(allowed_models=["simple_ops"], rpm_limit=30, tpm_limit=900)
    Budget.objects.create(api_key=old, amount_usd=Decimal("5"), period=Budget.Period.WEEKLY)
    login(client, users["member"])
    before = timezone.now()
    response = client.post(reverse("portal:key_rotate", args=[old.pk]), {"grace": grace})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = SECRET_RE.search(response.content.decode()).group(0)
    new = ApiKey.objects.get(key_hash=keys.hash_secret(secret))
    old.refresh_from_db()
    assert new.pk != old.pk and old.revoked_at is None
    assert before + delta <= old.expires_at <= timezone.now() + delta
    assert (new.name, new.team, new.created_by, new.allowed_models, new.rpm_limit, new.tpm_limit) == (
        old.name,
        old.team,
        users["member"],
        ["simple_ops"],
        30,
        900,
    )
    assert new.expires_at is None
    budget = new.budgets.get()
    assert (budget.amount_usd, budget.period) == (Decimal("5"), Budget.Period.WEEKLY)


def test_rotating_without_grace_revokes_the_old_key_now(client, world):
    users, _, keys_ = world
    login(client, users["owner"])
    create = client.post(reverse("portal:key_rotate", args=[keys_["member"].pk]), {"grace": "0"})
    assert SECRET_RE.search(create.content.decode())
    keys_["member"].refresh_from_db()
    assert keys_["member"].revoked_at is not None


def test_the_grace_never_extends_an_earlier_expiry(client, world):
    users, _, keys_ = world
    soon = timezone.now() + timedelta(minutes=10)
    ApiKey.objects.filter(pk=keys_["owner"].pk).update(expires_at=soon)
    login(client, users["owner"]).post(reverse("portal:key_rotate", args=[keys_["owner"].pk]), {"grace": "7d"})
    keys_["owner"].refresh_from_db()
    assert keys_["owner"].expires_at == soon


def test_revoked_keys_cannot_be_rotated(client, world):
    users, _, keys_ = world
    ApiKey.objects.filter(pk=keys_["owner"].pk).update(revoked_at=timezone.now())
    response = login(client, users["owner"]).post(
        reverse("portal:key_rotate", args=[keys_["owner"].pk]), {"grace": "1h"}, follow=True
    )
    assert "cannot be rotated" in response.content.decode()
    assert ApiKey.objects.count() == 4


def test_revoking_asks_for_confirmation_then_revokes_on_post(client, world):
    users, _, keys_ = world
    key = keys_["member"]
    login(client, users["member"])
    url = reverse("portal:key_revoke", args=[key.pk])
    assert client.get(url).status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is None
    response = client.post(url, follow=True)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "is revoked" in response.content.decode()


# --- usage --------------------------------------------------------------------------------------


def test_members_see_their_own_usage_and_owners_the_teams(client, world):
    users, teams, keys_ = world
    add_usage(keys_["member"], "1.00", n=2)
    add_usage(keys_["owner"], "3.00")
    add_usage(keys_["data"], "50.00")
    url = reverse("portal:usage", args=[teams["web"].pk])
    member = login(client, users["member"]).get(url).context["summary"]
    assert (member.whole_team, member.totals["requests"], member.totals["cost_usd"]) == (False, 2, Decimal(2))
    assert [row["api_key_id"] for row in member.per_key] == [keys_["member"].pk]
    owner = login(client, users["owner"]).get(url).context["summary"]
    assert (owner.whole_team, owner.totals["requests"], owner.totals["cost_usd"]) == (True, 3, Decimal(5))
    assert [row["api_key_id"] for row in owner.per_key] == [keys_["owner"].pk, keys_["member"].pk]
    assert sum(row["requests"] for row in owner.per_day) == 3


# --- through the real gateway --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_revocation_in_the_portal_is_immediate_at_the_gateway(client, gateway_url, mock_upstream_url):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    make_tier("simple_ops", [make_model(provider, name="mock-small", upstream_model="mock-small-1")])
    team = make_team("acme", "web")
    owner = make_user("lead")
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    login(client, owner)
    secret = create_key(client, team, name="ci")

    def call(key: str) -> openai.types.chat.ChatCompletion:
        sdk = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0)
        return sdk.chat.completions.create(model="simple_ops", messages=[{"role": "user", "content": "hi"}])

    assert call(secret).choices[0].message.content == "Mock reply to: hi"
    key = ApiKey.objects.get(key_hash=keys.hash_secret(secret))
    response = client.post(reverse("portal:key_rotate", args=[key.pk]), {"grace": "0"})
    rotated = SECRET_RE.search(response.content.decode()).group(0)
    with pytest.raises(openai.PermissionDeniedError) as excinfo:
        call(secret)
    assert excinfo.value.code == "key_revoked"
    assert call(rotated).choices[0].message.content == "Mock reply to: hi"
    new_key = ApiKey.objects.get(key_hash=keys.hash_secret(rotated))
    client.post(reverse("portal:key_revoke", args=[new_key.pk]))
    with pytest.raises(openai.PermissionDeniedError) as excinfo:
        call(rotated)
    assert excinfo.value.code == "key_revoked"


@pytest.mark.django_db
def test_rotation_copies_every_budget_field():
    from decimal import Decimal

    from billing.models import Budget
    from tenants.services import api_key_rotate
    from tests.factories import make_key

    key, _ = make_key()
    Budget.objects.create(
        api_key=key, amount_usd=Decimal("5"), action=Budget.Action.DOWNGRADE, downgrade_tier="simple_ops"
    )
    new = api_key_rotate(api_key=key, grace=timedelta(0)).api_key
    copied = Budget.objects.get(api_key=new)
    assert (copied.amount_usd, copied.action, copied.downgrade_tier) == (Decimal("5"), "downgrade", "simple_ops")

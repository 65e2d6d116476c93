"""The management API: secrets shown once, personal tokens, rotation, members, filters and the audit trail."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone
from rest_framework.test import APIClient

from providers.models import Model
from tenants import keys as key_secrets
from tenants.models import ApiKey, Membership, PersonalToken
from tests.factories import make_model, make_provider
from tests.tenants.world import World, build_world, colleague

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def client_for(world: World, role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


def test_it_returns_the_secret_of_a_new_key_once_and_never_lists_it(world):
    client = client_for(world, "member")
    created = client.post("/api/keys/", {"team": world.team.pk, "name": "laptop"}, format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    key = ApiKey.objects.get(pk=created.json()["id"])
    assert key.key_hash == key_secrets.hash_secret(secret) and key.created_by == world.users["member"]
    listed = client.get("/api/keys/").content.decode()
    detail = client.get(f"/api/keys/{key.pk}/").content.decode()
    assert secret not in listed and secret not in detail
    assert "key_hash" not in listed and key.key_hash not in listed


def test_it_creates_a_key_with_a_budget_and_checks_model_names(world):
    model = make_model(make_provider("http://127.0.0.1:9"), name="cheap")
    client = client_for(world, "owner")
    bad = client.post("/api/keys/", {"team": world.team.pk, "name": "x", "allowed_models": ["nope"]}, format="json")
    assert bad.status_code == 400 and "allowed_models" in bad.json()
    good = client.post(
        "/api/keys/",
        {"team": world.team.pk, "name": "ci", "allowed_models": [model.name], "budget_usd": "3.50", "rpm_limit": 10},
        format="json",
    )
    assert good.status_code == 201, good.content
    key = ApiKey.objects.get(pk=good.json()["id"])
    assert key.allowed_models == ["cheap"] and key.rpm_limit == 10
    assert str(key.budgets.get().amount_usd) == "3.5000"
    assert Model.objects.filter(name="cheap").exists()


def test_delete_revokes_and_keeps_the_key(world):
    key = world.keys["member"]
    response = client_for(world, "member").delete(f"/api/keys/{key.pk}/")
    assert response.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    listed = client_for(world, "owner").get("/api/keys/", {"status": "revoked"}).json()
    assert [row["id"] for row in listed["results"]] == [key.pk]


def test_rotate_issues_a_new_secret_and_keeps_the_old_key_for_the_grace(world):
    key = world.keys["member"]
    response = client_for(world, "owner").post(f"/api/keys/{key.pk}/rotate/", {"grace_seconds": 3600}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith(key_secrets.SECRET_PREFIX) and body["id"] != key.pk
    key.refresh_from_db()
    assert key.revoked_at is None and key.expires_at is not None and key.expires_at > timezone.now()
    revoked = client_for(world, "owner").post(f"/api/keys/{body['id']}/rotate/", {}, format="json")
    assert revoked.status_code == 201
    again = client_for(world, "owner").post(f"/api/keys/{body['id']}/rotate/", {}, format="json")
    assert again.status_code == 400 and "detail" in again.json()


def test_members_are_added_by_username_and_a_team_keeps_an_owner(world):
    client = client_for(world, "owner")
    name = colleague(world)
    added = client.post("/api/members/", {"team": world.team.pk, "user": name, "role": "member"}, format="json")
    assert added.status_code == 201, added.content
    assert added.json()["user"] == name
    duplicate = client.post("/api/members/", {"team": world.team.pk, "user": name}, format="json")
    assert duplicate.status_code == 400 and "user" in duplicate.json()
    unknown = client.post("/api/members/", {"team": world.team.pk, "user": "nobody"}, format="json")
    assert unknown.status_code == 400
    owner = Membership.objects.get(team=world.team, user=world.users["owner"])
    demote = client.patch(f"/api/members/{owner.pk}/", {"role": "member"}, format="json")
    assert demote.status_code == 400 and "owner" in demote.json()["role"][0]
    remove = client.delete(f"/api/members/{owner.pk}/")
    assert remove.status_code == 400
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_personal_tokens_authenticate_and_cannot_mint_tokens(world):
    session = APIClient()
    session.force_login(world.users["owner"])
    created = session.post("/api/tokens/", {"name": "ci"}, format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert PersonalToken.objects.get().token_hash != secret
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    listed = bearer.get("/api/keys/")
    assert listed.status_code == 200 and listed.json()["count"] == 2
    assert bearer.post("/api/tokens/", {"name": "another"}, format="json").status_code == 403
    assert secret not in bearer.get("/api/tokens/").content.decode()
    assert bearer.delete(f"/api/tokens/{created.json()['id']}/").status_code == 204
    refused = bearer.get("/api/keys/")
    assert refused.status_code == 401 and "detail" in refused.json()
    anonymous = APIClient().get("/api/keys/")
    assert anonymous.status_code == 401 and "detail" in anonymous.json()


def test_lists_are_paginated_filtered_and_searchable(world):
    client = client_for(world, "root")
    page = client.get("/api/keys/", {"tenant": world.tenant.pk}).json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 3
    by_team = client.get("/api/keys/", {"team": world.sibling.pk}).json()
    assert [row["id"] for row in by_team["results"]] == [world.keys["sibling"].pk]
    found = client.get("/api/keys/", {"search": world.keys["foreign"].prefix}).json()
    assert [row["id"] for row in found["results"]] == [world.keys["foreign"].pk]
    teams = client.get("/api/teams/", {"tenant": world.foreign_tenant.pk}).json()
    assert [row["id"] for row in teams["results"]] == [world.foreign.pk]
    assert client.get("/api/keys/", {"page": 99}).status_code == 404


def test_foreign_and_missing_ids_look_the_same(world):
    client = client_for(world, "tenant_admin")
    foreign = client.get(f"/api/keys/{world.keys['foreign'].pk}/")
    missing = client.get("/api/keys/999999/")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    by_foreign_team = client.post("/api/keys/", {"team": world.foreign.pk, "name": "x"}, format="json")
    by_missing_team = client.post("/api/keys/", {"team": 999999, "name": "x"}, format="json")
    assert by_foreign_team.status_code == by_missing_team.status_code == 400
    assert by_foreign_team.json()["team"][0].replace(str(world.foreign.pk), "N") == by_missing_team.json()["team"][
        0
    ].replace("999999", "N")
    filtered = client.get("/api/keys/", {"team": world.foreign.pk}).json()
    assert filtered["count"] == 0


def test_api_writes_are_in_the_admin_history(world):
    client = client_for(world, "owner")
    key = world.keys["member"]
    client.patch(f"/api/keys/{key.pk}/", {"name": "renamed", "rpm_limit": 7}, format="json")
    client.delete(f"/api/keys/{key.pk}/")
    messages = list(
        LogEntry.objects.filter(object_id=str(key.pk), content_type__model="apikey")
        .order_by("action_time")
        .values_list("user__username", "change_message")
    )
    assert messages[0][0] == "owner" and messages[0][1].startswith("[API] Changed ")
    assert "renamed" in messages[0][1] and "rpm_limit: None → 7" in messages[0][1]
    assert messages[1] == ("owner", "[API] Revoked the key.")
    admin = APIClient()
    admin.force_login(world.users["tenant_admin"])
    history = admin.get(f"/admin/tenants/apikey/{key.pk}/history/")
    assert history.status_code == 200 and "[API] Revoked the key." in history.content.decode()


def test_schema_and_docs_are_served(world):
    schema = APIClient().get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/keys/", "/api/keys/{id}/rotate/", "/api/teams/", "/api/members/", "/api/tenants/"} <= set(paths)
    assert "secret" not in schema.json()["components"]["schemas"]["ApiKey"]["properties"]
    docs = APIClient().get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower() and b"cdn" not in docs.content.lower()


def test_bad_query_parameters_are_400s_in_drfs_shape(world):
    client = client_for(world, "root")
    search = client.get("/api/keys/", {"search": "a\x00b"})
    assert search.status_code == 400 and list(search.json()) == ["search"]
    status = client.get("/api/keys/", {"status": "sideways"})
    assert status.status_code == 400 and "status" in status.json()


@pytest.mark.django_db
def test_a_nul_byte_in_a_username_is_a_400_not_a_500():
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from tests.factories import make_team

    team = make_team()
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("root-nul", password="pw-for-tests-only"))
    response = client.post("/api/members/", {"team": team.pk, "user": "bad\x00name", "role": "member"}, format="json")
    assert response.status_code == 400
    assert "user" in response.json()


def test_adding_a_member_does_not_tell_whether_an_account_exists_outside_the_tenant(world):
    client = client_for(world, "owner")
    answers = [
        client.post("/api/members/", {"team": world.team.pk, "user": name}, format="json")
        for name in ("globex-owner", "outsider", "nobody-at-all")  # another tenant's, no tenant's, no account
    ]
    assert {a.status_code for a in answers} == {400}
    assert len({a.content for a in answers}) == 1  # one answer: nothing to tell them apart
    assert not Membership.objects.filter(team=world.team, user__username__in=["globex-owner", "outsider"]).exists()
    root = client_for(world, "root")  # platform admins add any account
    assert root.post("/api/members/", {"team": world.team.pk, "user": "outsider"}, format="json").status_code == 201

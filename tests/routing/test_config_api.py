"""The configuration API: every object the admin edits, with the admin's permissions, audit and validation."""

from __future__ import annotations

import httpx2
import pytest
from django.contrib.admin.models import LogEntry
from rest_framework.test import APIClient

from providers.models import Model, Provider
from routing.models import ModelAlias, Skill, Tier
from tests.factories import make_key, make_model, make_provider, make_tier
from tests.tenants.world import World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def client_for(world: World, role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


def test_a_superuser_manages_providers_models_and_ordered_tiers(world):
    root = client_for(world, "root")
    created = root.post(
        "/api/providers/",
        {
            "name": "edge-azure",
            "kind": "azure",
            "base_url": "https://acme.openai.azure.com",
            "api_key_env": "AZURE_OPENAI_KEY",
            "api_version": "2024-10-21",
            "extra_headers": {"CF-Access-Client-Id": "EDGE_CF_ID"},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["credential_set"] is False and created.json()["api_key_env"] == "AZURE_OPENAI_KEY"
    for name in ("gpt-a", "gpt-b"):
        response = root.post(
            "/api/models/",
            {"name": name, "provider": "edge-azure", "upstream_model": f"{name}-deploy", "input_cost_per_million": "1"},
            format="json",
        )
        assert response.status_code == 201, response.json()
    tier = root.post("/api/tiers/", {"name": "edge", "models": ["gpt-a", "gpt-b"]}, format="json")
    assert tier.status_code == 201, tier.json()
    assert tier.json()["models"] == ["gpt-a", "gpt-b"] and tier.json()["tenant"] is None
    reordered = root.patch(f"/api/tiers/{tier.json()['id']}/", {"models": ["gpt-b", "gpt-a"]}, format="json")
    assert reordered.json()["models"] == ["gpt-b", "gpt-a"]
    assert [tm.model.name for tm in Tier.objects.get(name="edge").tier_models.order_by("position")] == [
        "gpt-b",
        "gpt-a",
    ]
    # A model still in a tier cannot be deleted (PROTECT), and says so.
    in_use = root.delete(f"/api/models/{Model.objects.get(name='gpt-a').pk}/")
    assert in_use.status_code == 400
    assert root.delete(f"/api/tiers/{tier.json()['id']}/").status_code == 204
    assert root.delete(f"/api/models/{Model.objects.get(name='gpt-a').pk}/").status_code == 204
    history = LogEntry.objects.filter(object_repr="edge-azure").values_list("change_message", flat=True)
    assert any("[API] Created." in message for message in history)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"extra_headers": {"X-Secret": "sk live 123"}}, "extra_headers"),
        ({"extra_headers": {"Authorization": "MY_TOKEN"}}, "extra_headers"),
        ({"kind": "gopher"}, "kind"),
        ({"base_url": "not a url"}, "base_url"),
        ({"connect_timeout": 0}, "connect_timeout"),
    ],
)
def test_bad_provider_input_is_a_400_naming_the_field(world, payload, field):
    body = {"name": "p1", "kind": "openai", "base_url": "https://x.example/v1", **payload}
    response = client_for(world, "root").post("/api/providers/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert "sk live 123" not in response.content.decode()


def test_tier_members_must_exist_and_not_repeat(world):
    make_model(make_provider("https://x.example/v1"), name="m1")
    root = client_for(world, "root")
    assert "models" in root.post("/api/tiers/", {"name": "t", "models": ["m1", "nope"]}, format="json").json()
    assert "models" in root.post("/api/tiers/", {"name": "t", "models": ["m1", "m1"]}, format="json").json()
    assert root.post("/api/tiers/", {"name": "t", "models": ["m1"]}, format="json").status_code == 201
    duplicate = root.post("/api/tiers/", {"name": "t", "models": ["m1"]}, format="json")
    assert duplicate.status_code == 400


def test_tenant_admins_see_global_rows_and_manage_only_their_tenants(world):
    model = make_model(make_provider("https://x.example/v1"), name="m1")
    global_tier = make_tier("shared", [model])
    foreign_tier = make_tier("theirs", [model], tenant=world.foreign_tenant)
    admin = client_for(world, "tenant_admin")
    names = {row["name"] for row in admin.get("/api/tiers/").json()["results"]}
    assert names == {"shared"}
    assert admin.get(f"/api/tiers/{foreign_tier.pk}/").status_code == 404
    assert admin.patch(f"/api/tiers/{global_tier.pk}/", {"description": "x"}, format="json").status_code == 403
    assert admin.post("/api/tiers/", {"name": "mine", "models": ["m1"]}, format="json").status_code == 403  # global
    own = admin.post("/api/tiers/", {"name": "shared", "tenant": world.tenant.slug, "models": ["m1"]}, format="json")
    assert own.status_code == 201, own.json()
    moved = admin.patch(f"/api/tiers/{own.json()['id']}/", {"tenant": world.foreign_tenant.slug}, format="json")
    assert moved.status_code == 403, moved.json()  # moving a tier to another tenant: a role question
    assert Tier.objects.get(pk=own.json()["id"]).tenant == world.tenant
    # Providers and models are platform configuration: invisible to tenant admins, as in the admin.
    assert admin.get("/api/providers/").json()["results"] == []
    assert admin.post("/api/providers/", {"name": "p", "kind": "openai", "base_url": "https://x/v1"}).status_code == 403
    for role in ("owner", "member", "outsider"):
        assert (
            client_for(world, role)
            .post("/api/skills/", {"slug": "s", "name": "S", "system_prompt": "p", "tenant": world.tenant.slug})
            .status_code
            == 403
        )


def test_skills_aliases_and_policies_are_scoped_crud(world):
    admin = client_for(world, "tenant_admin")
    skill = admin.post(
        "/api/skills/", {"slug": "review", "name": "Review", "system_prompt": "Review it.", "tenant": world.tenant.slug}
    )
    assert skill.status_code == 201, skill.json()
    alias = admin.post(
        "/api/aliases/", {"pattern": "claude-*", "target": "auto", "tenant": world.tenant.slug}, format="json"
    )
    assert alias.status_code == 201, alias.json()
    for path, body in [
        ("/api/routing-policies/", {"strategy": "local_first"}),
        ("/api/guardrail-policies/", {"mode": "block", "commands": ["rm", "sudo"]}),
        ("/api/cache-policies/", {"ttl_seconds": 60}),
    ]:
        created = admin.post(path, {**body, "tenant": world.tenant.slug}, format="json")
        assert created.status_code == 201, (path, created.json())
        again = admin.post(path, {**body, "tenant": world.tenant.slug}, format="json")
        assert again.status_code == 400  # one policy per tenant
        assert admin.delete(f"{path}{created.json()['id']}/").status_code == 204
    assert Skill.objects.get(slug="review").tenant == world.tenant
    assert ModelAlias.objects.get(pattern="claude-*").tenant == world.tenant
    outsider_view = client_for(world, "outsider").get("/api/skills/").json()["results"]
    assert [row["slug"] for row in outsider_view if row["tenant"]] == []


CONFIG = """
providers:
  - {name: api-gemini, kind: gemini, base_url: https://generativelanguage.googleapis.com, api_key_env: GEMINI_API_KEY}
models:
  - {name: flash, provider: api-gemini, upstream_model: gemini-2.5-flash, input_cost_per_million: 0.3}
routing:
  tiers:
    - {name: cheap, model: flash}
"""


def test_post_config_previews_with_a_diff_then_applies_and_audits(world):
    root = client_for(world, "root")
    preview = root.post("/api/config/", {"config": CONFIG}, format="json")
    assert preview.status_code == 200, preview.json()
    assert preview.json()["dry_run"] is True
    actions = {(c["kind"], c["name"]): c["action"] for c in preview.json()["changes"]}
    assert actions[("provider", "api-gemini")] == "created" and actions[("tier", "cheap")] == "created"
    assert not Provider.objects.filter(name="api-gemini").exists()
    applied = root.post("/api/config/", {"config": CONFIG, "dry_run": False}, format="json")
    assert applied.status_code == 200 and applied.json()["dry_run"] is False
    assert Tier.objects.get(name="cheap", tenant=None).tier_models.get().model.name == "flash"
    assert LogEntry.objects.filter(object_repr="api-gemini", change_message__contains="Config import").exists()
    changed = CONFIG.replace("0.3", "0.5")
    diff = root.post("/api/config/", {"config": changed}, format="json").json()["changes"]
    [model_change] = [c for c in diff if c["kind"] == "model"]
    assert model_change["action"] == "updated" and "input_cost_per_million" in model_change["note"]


def test_post_config_refuses_bad_files_and_non_superusers(world):
    root = client_for(world, "root")
    bad = root.post("/api/config/", {"config": "providers:\n  - {name: x, kind: nope, base_url: https://x}\n"})
    assert bad.status_code == 400 and any("kind" in issue for issue in bad.json()["issues"])
    assert root.post("/api/config/", {"config": "[unclosed"}).status_code == 400
    assert root.post("/api/config/", {"config": "\x81"}).status_code == 400  # not printable: YAML refuses it
    assert root.post("/api/config/", {}).status_code == 400
    assert client_for(world, "tenant_admin").post("/api/config/", {"config": CONFIG}).status_code == 403
    assert APIClient().post("/api/config/", {"config": CONFIG}).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_tier_created_through_the_api_serves_the_next_request(gateway_url, mock_upstream_url):
    from django.contrib.auth import get_user_model

    root = APIClient()
    root.force_authenticate(get_user_model().objects.create_superuser("api-root", password=None))
    assert (
        root.post(
            "/api/providers/", {"name": "api-mock", "kind": "openai", "base_url": f"{mock_upstream_url}/v1"}
        ).status_code
        == 201
    )
    assert (
        root.post(
            "/api/models/", {"name": "api-model", "provider": "api-mock", "upstream_model": "m"}, format="json"
        ).status_code
        == 201
    )
    assert root.post("/api/tiers/", {"name": "api_tier", "models": ["api-model"]}, format="json").status_code == 201
    _, secret = make_key()
    assert Provider.objects.get(name="api-mock").enabled  # posted as a form without the checkbox: default kept
    response = httpx2.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "api_tier", "messages": [{"role": "user", "content": "via the api"}]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-tier"] == "api_tier"

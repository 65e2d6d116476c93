"""Shared tier positions as configuration: the config file, the management API and the admin, bad input included."""

from __future__ import annotations

import textwrap

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from gateway_platform.config.snapshot import Balance
from routing.catalog import load_catalog
from routing.config_file import ConfigError, config_export, config_import, parse_config
from routing.models import Tier, TierModel
from tests.factories import make_model, make_provider
from tests.tenants.world import build_world

pytestmark = pytest.mark.django_db

CONFIG = textwrap.dedent(
    """\
    providers:
      - {name: east, kind: openai, base_url: "http://east.example/v1"}
      - {name: west, kind: azure, base_url: "https://west.example", api_version: "2024-10-21"}
    models:
      - {name: gpt-east, provider: east, upstream_model: gpt-4o}
      - {name: gpt-west, provider: west, upstream_model: gpt-4o}
      - {name: gpt-north, provider: east, upstream_model: gpt-4o-2}
      - {name: mini, provider: east, upstream_model: gpt-4o-mini}
    routing:
      tiers:
        - name: code
          balancing: least-busy
          model:
            - {model: gpt-east, weight: 5}
            - {model: gpt-west, weight: 3}
            - {model: gpt-north, weight: 2}
          fallbacks: [mini]
    """
)


def members() -> list[tuple[str, int, int]]:
    rows = TierModel.objects.filter(tier__name="code").select_related("model")
    return sorted((tm.model.name, tm.position, tm.weight) for tm in rows)


def test_a_shared_position_imports_exports_and_reaches_the_snapshot():
    config_import(text=CONFIG)  # raises ConfigError on any problem

    assert Tier.objects.get(name="code").balancing == "least-busy"
    assert members() == [("gpt-east", 0, 5), ("gpt-north", 0, 2), ("gpt-west", 0, 3), ("mini", 1, 1)]
    _, tiers, _, _ = load_catalog()
    assert tiers["code"].balance == Balance("least-busy", ((("gpt-east", 5), ("gpt-west", 3), ("gpt-north", 2)),))
    assert [d.name for d in tiers["code"].deployments] == ["gpt-east", "gpt-west", "gpt-north", "mini"]
    exported = config_export()
    tier = next(t for t in parse_config(exported).routing.tiers if t.name == "code")
    assert tier.model == (("gpt-east", 5), ("gpt-west", 3), ("gpt-north", 2)) and tier.fallbacks == ((("mini", 1),),)
    assert tier.balancing == "least-busy"
    again = config_import(text=exported)
    assert [c.action for c in again.changes if c.kind == "tier"] == ["unchanged"]


@pytest.mark.parametrize(
    ("position", "path", "message"),
    [
        ("[{model: gpt-east, weight: 0}]", "routing.tiers[0].model[0].weight", "between 1 and"),
        ("[{model: gpt-east, weight: -2}]", "routing.tiers[0].model[0].weight", "between 1 and"),
        ("[{model: gpt-east, weight: 1.5}]", "routing.tiers[0].model[0].weight", "whole number"),
        ("[{model: gpt-east, weight: heavy}]", "routing.tiers[0].model[0].weight", "whole number"),
        ("[{weight: 2}]", "routing.tiers[0].model[0].model", "missing required key"),
        ("[]", "routing.tiers[0].model", "expected a model name or a list"),
        ("{model: gpt-east}", "routing.tiers[0].model", "expected a model name or a list"),
    ],
)
def test_bad_positions_in_the_file_are_reported_with_their_path(position: str, path: str, message: str):
    with pytest.raises(ConfigError) as caught:
        parse_config(f"routing: {{tiers: [{{name: t, model: {position}}}]}}")

    assert [issue.path for issue in caught.value.issues] == [path]
    assert message in caught.value.issues[0].message


def test_an_unknown_strategy_in_the_file_is_refused_by_the_command(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(CONFIG.replace("balancing: least-busy", "balancing: round-robin"))

    with pytest.raises(CommandError) as caught:
        call_command("import_config", str(path))

    assert "routing.tiers[0].balancing" in str(caught.value) and "round-robin" in str(caught.value)
    assert not Tier.objects.filter(name="code").exists()


def test_the_api_reads_and_writes_shared_positions_and_refuses_bad_ones():
    world = build_world()
    root = APIClient()
    root.force_authenticate(world.users["root"])
    provider = make_provider("http://mock.example/v1", name="api-lb")
    for name in ("a1", "a2", "b1"):
        make_model(provider, name=name)
    body = {"name": "pool", "balancing": "latency", "models": [[{"model": "a1", "weight": 3}, {"model": "a2"}], "b1"]}

    created = root.post("/api/tiers/", body, format="json")

    assert created.status_code == 201, created.json()
    assert created.json()["models"] == [[{"model": "a1", "weight": 3}, {"model": "a2", "weight": 1}], "b1"]
    assert created.json()["balancing"] == "latency"
    read = root.get(f"/api/tiers/{created.json()['id']}/").json()
    assert read["models"] == created.json()["models"]
    bad_bodies = [
        ({"models": [[{"model": "a1", "weight": 0}]]}, "models"),
        ({"models": [[{"model": "a1", "weight": -1}]]}, "models"),
        ({"models": [[{"model": "a1", "weight": 2**31}]]}, "models"),
        ({"models": [[{"model": "a1", "weight": "3"}]]}, "models"),
        ({"models": [[{"model": "a1", "share": 3}]]}, "models"),
        ({"models": [[]]}, "models"),
        ({"models": "a1"}, "models"),
        ({"models": [[{"model": "a1"}, {"model": "a1"}]]}, "models"),
        ({"models": [[{"model": "nope", "weight": 2}]]}, "models"),
        ({"models": [[{"model": "a\x001", "weight": 2}]]}, "models"),  # PostgreSQL text cannot hold NUL
        ({"models": ["b\x001"]}, "models"),
        ({"models": ["  "]}, "models"),
        ({"models": ["a1"], "balancing": "round-robin"}, "balancing"),
    ]
    for changes, field in bad_bodies:
        response = root.post("/api/tiers/", {"name": "bad", **changes}, format="json")
        assert response.status_code == 400, (changes, response.content)
        assert field in response.json(), (changes, response.json())
    assert not Tier.objects.filter(name="bad").exists()


def _tier_form(tier_name: str, rows: list[tuple[int, int, str]], balancing: str = "weighted") -> dict[str, str]:
    form = {
        "name": tier_name,
        "enabled": "on",
        "balancing": balancing,
        "capabilities": "",
        "tier_models-TOTAL_FORMS": str(len(rows)),
        "tier_models-INITIAL_FORMS": "0",
        "tier_models-MIN_NUM_FORMS": "0",
        "tier_models-MAX_NUM_FORMS": "1000",
    }
    for index, (model_id, position, weight) in enumerate(rows):
        form |= {
            f"tier_models-{index}-model": str(model_id),
            f"tier_models-{index}-position": str(position),
            f"tier_models-{index}-weight": weight,
        }
    return form


def test_the_admin_edits_weights_and_strategy_and_refuses_bad_ones():
    world = build_world()
    browser = Client()
    browser.force_login(world.users["root"])
    provider = make_provider("http://mock.example/v1", name="admin-lb")
    one, two = make_model(provider, name="m-one"), make_model(provider, name="m-two")

    for weight in ("0", "-1", "x", str(2**31)):
        page = browser.post("/admin/routing/tier/add/", _tier_form("shared", [(one.pk, 0, "3"), (two.pk, 0, weight)]))
        assert page.status_code == 200 and b"errornote" in page.content, weight
    page = browser.post("/admin/routing/tier/add/", _tier_form("shared", [(one.pk, 0, "3")], balancing="fastest"))
    assert page.status_code == 200 and b"errornote" in page.content
    assert not Tier.objects.filter(name="shared").exists()

    saved = browser.post(
        "/admin/routing/tier/add/", _tier_form("shared", [(one.pk, 0, "3"), (two.pk, 0, "1")], balancing="least-busy")
    )

    assert saved.status_code == 302
    tier = Tier.objects.get(name="shared")
    assert tier.balancing == "least-busy" and tier.positions() == [[("m-one", 3), ("m-two", 1)]]
    listing = browser.get("/admin/routing/tier/").content.decode()
    assert "[m-one ×3 | m-two ×1: least-busy]" in listing


def test_the_try_routing_page_shows_a_shared_position_with_its_load(settings):
    from gateway_platform.config import version as config_version
    from gateway_platform.redis_clients import sync_client
    from tests.factories import make_key, make_team

    world = build_world()
    browser = Client()
    browser.force_login(world.users["root"])
    provider = make_provider("http://127.0.0.1:9", name="try-lb")  # never called
    busy, idle = make_model(provider, name="try-busy"), make_model(provider, name="try-idle")
    tier = Tier.objects.create(name="try_pool", balancing="least-busy")
    TierModel.objects.create(tier=tier, model=busy, position=0, weight=1)
    TierModel.objects.create(tier=tier, model=idle, position=0, weight=1)
    config_version.bump()
    redis = sync_client()
    now = redis.time()[0]
    redis.zadd("lb:busy:try-busy", {"r1": now, "r2": now, "r3": now})
    key, _ = make_key(make_team())

    page = browser.post("/admin/routing/try/", {"api_key": key.pk, "model": "try_pool", "prompt": "hello"})

    result = page.context["result"]
    assert [d["name"] for d in result.deployments] == ["try-idle", "try-busy"]
    members = {m["name"]: m for m in result.balancing[0]["members"]}
    assert members["try-busy"]["in_flight"] == 3 and members["try-idle"]["in_flight"] == 0
    assert members["try-idle"]["chosen"] and members["try-idle"]["share"] == "50%"
    assert "Load balancing (least-busy)" in page.content.decode()
    assert redis.zcard("lb:busy:try-idle") == 0  # the page only reads: nothing is counted in flight

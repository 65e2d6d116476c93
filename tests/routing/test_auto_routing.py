"""`model="auto"`: route planning, tenant tier views, and the whole path through a real Daphne gateway."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx2
import openai
import pytest

from gateway_platform.config.snapshot import Snapshot, load_snapshot
from gateway_platform.errors import GatewayError
from routing.config_file import ConfigError, config_export, config_import, config_seed_defaults, parse_config
from routing.models import RoutingPolicy, Tier
from routing.policies import EXTENSION as POLICIES
from routing.policies import Policies, RoutingPolicyInfo
from routing.resolver import resolve, visible_models
from routing.tier_views import TierOverride, merge_tiers, tiers_for
from serving.route_plan import plan_route, smart_routing
from tests.factories import make_key, make_model, make_provider, make_team, make_tier
from tests.routing import memory_snapshot as mem

HEAVY = "design the architecture of a multi-tenant event pipeline and weigh the trade-offs"
CODE = "write a python script that converts every markdown file in docs/ to html"
LIGHT = "list the files in the migrations folder"


# -- planning (pure, in-memory snapshot) -----------------------------------------------------------


@pytest.mark.parametrize(("text", "tier"), [(LIGHT, "simple_ops"), (CODE, "code_gen"), (HEAVY, "complex_reasoning")])
def test_auto_scores_the_request_and_records_why(text: str, tier: str) -> None:
    exchange = mem.exchange()
    route = plan_route(exchange, mem.snapshot(), mem.key(), mem.chat(text))
    assert route.tier == tier and route.requested == "auto"
    assert route.deployments[0].name == mem.TIER_MODELS[tier]
    assert exchange.route_header.startswith("score=") and f"tier={tier}" in exchange.route_header
    assert exchange.route_reason["tier"] == tier and exchange.route_reason["reason"] == "auto"
    assert exchange.route_reason["features"] and exchange.route_reason["strategy"] == "cost_optimized"


@pytest.mark.parametrize(
    ("headers", "extra"),
    [
        ({"x_gateway_smart_routing": "0"}, {}),
        ({}, {"smart_routing": False}),
        ({"x_gateway_smart_routing": "1"}, {"smart_routing": False}),
    ],
)
def test_without_smart_routing_auto_takes_the_middle_band(headers: dict[str, str], extra: dict[str, Any]) -> None:
    exchange = mem.exchange(**headers)
    route = plan_route(exchange, mem.snapshot(), mem.key(), mem.chat(LIGHT, **extra))
    assert route.tier == "code_gen"
    assert exchange.route_header == "tier=code_gen; reason=smart_routing_off"


def test_the_smart_routing_header_is_validated() -> None:
    assert smart_routing({b"x-gateway-smart-routing": b"off"}, None) is False
    assert smart_routing({b"x-gateway-smart-routing": b"True"}, None) is True
    assert smart_routing({b"x-gateway-smart-routing": b"0"}, True) is True  # the body field wins
    with pytest.raises(GatewayError) as excinfo:
        smart_routing({b"x-gateway-smart-routing": b"maybe"}, None)
    assert excinfo.value.status == 400


def test_the_key_bounds_auto() -> None:
    exchange = mem.exchange()
    route = plan_route(exchange, mem.snapshot(), mem.key("simple_ops", "mid-model"), mem.chat(HEAVY))
    assert route.tier == "simple_ops" and "adjust=key:down" in exchange.route_header
    route = plan_route(mem.exchange(), mem.snapshot(), mem.key("simple_ops", "complex_reasoning"), mem.chat(CODE))
    assert route.tier == "complex_reasoning"
    with pytest.raises(GatewayError) as excinfo:
        plan_route(mem.exchange(), mem.snapshot(), mem.key("mid-model"), mem.chat(CODE))
    assert (excinfo.value.status, excinfo.value.code) == (400, "model_not_allowed")
    with pytest.raises(GatewayError) as excinfo:
        plan_route(mem.exchange(), mem.snapshot(), mem.key("mid-model"), mem.chat(CODE, smart_routing=False))
    assert excinfo.value.code == "model_not_allowed"


def test_auto_needs_a_tier_with_models() -> None:
    snapshot = mem.snapshot({name: replace(t, deployments=()) for name, t in mem.seeded_tiers().items()})
    with pytest.raises(GatewayError) as excinfo:
        plan_route(mem.exchange(), snapshot, mem.key(), mem.chat(CODE))
    assert (excinfo.value.status, excinfo.value.code) == (400, "model_not_found")
    assert "not configured" in excinfo.value.message
    assert ("auto", "gateway-router") not in visible_models(snapshot, mem.key())


def test_named_tiers_and_models_are_not_scored() -> None:
    for model in ("complex_reasoning", "cheap-model", "mockai:mid-model"):
        exchange = mem.exchange()
        route = plan_route(exchange, mem.snapshot(), mem.key(), mem.chat(LIGHT, model=model))
        assert route.deployments[0].name != "" and exchange.route_reason == {} and exchange.route_header == ""
    assert plan_route(mem.exchange(), mem.snapshot(), mem.key(), mem.chat(LIGHT, model="complex_reasoning")).tier == (
        "complex_reasoning"
    )


def test_resolving_auto_without_a_request_is_the_middle_band() -> None:
    route = resolve(mem.snapshot(), mem.key(), "auto")
    assert (route.requested, route.tier) == ("auto", "code_gen")


def test_models_lists_auto_when_the_key_can_route() -> None:
    assert ("auto", "gateway-router") in visible_models(mem.snapshot(), mem.key())
    assert ("auto", "gateway-router") in visible_models(mem.snapshot(), mem.key("simple_ops"))
    assert ("auto", "gateway-router") not in visible_models(mem.snapshot(), mem.key("cheap-model"))


def _with_policy(strategy: str, tenant_id: int = 1, **kwargs: Any) -> Snapshot:
    policies = Policies(routing_by_tenant={tenant_id: RoutingPolicyInfo(strategy=strategy)})
    return mem.snapshot(extensions={POLICIES: policies}, **kwargs)


def test_local_first_tries_the_local_model_first_for_the_lowest_band() -> None:
    local = mem.MODELS["local-model"]
    snapshot = _with_policy("local_first", local_fallback=local)
    route = plan_route(mem.exchange(), snapshot, mem.key(), mem.chat(LIGHT))
    assert [d.name for d in route.deployments] == ["local-model", "cheap-model"]
    route = plan_route(mem.exchange(), snapshot, mem.key(), mem.chat(CODE))
    assert [d.name for d in route.deployments] == ["mid-model", "local-model"]  # the usual fallback order
    other_tenant = plan_route(mem.exchange(), snapshot, mem.key(tenant_id=2), mem.chat(LIGHT))
    assert [d.name for d in other_tenant.deployments] == ["cheap-model", "local-model"]


def test_quality_first_is_the_tenants_strategy() -> None:
    exchange = mem.exchange()
    plan_route(exchange, _with_policy("quality_first"), mem.key(), mem.chat(CODE))
    assert exchange.route_reason["strategy"] == "quality_first"


# -- tenant tier views ---------------------------------------------------------------------------


def test_a_tenant_tier_overrides_the_global_one_and_inherits_what_it_leaves_empty() -> None:
    snapshot = mem.snapshot()
    overrides = (
        TierOverride(id=10, tenant_id=1, name="code_gen", enabled=True, model_names=("premium-model",)),
        TierOverride(id=11, tenant_id=1, name="simple_ops", enabled=True, complexity_max=0.5),
        TierOverride(id=12, tenant_id=1, name="complex_reasoning", enabled=False),
        TierOverride(id=13, tenant_id=1, name="tenant_only", enabled=True, model_names=("local-model", "gone")),
    )
    tiers = merge_tiers(snapshot, overrides)
    assert tiers["code_gen"].deployments == (mem.MODELS["premium-model"],)
    assert (
        tiers["code_gen"].complexity_max == 0.65
        and tiers["code_gen"].capabilities == mem.SEEDED_CAPABILITIES["code_gen"]
    )
    assert tiers["simple_ops"].complexity_max == 0.5 and tiers["simple_ops"].deployments == (mem.MODELS["cheap-model"],)
    assert "complex_reasoning" not in tiers
    assert tiers["tenant_only"].deployments == (mem.MODELS["local-model"],)
    assert snapshot.tiers["code_gen"].deployments == (mem.MODELS["mid-model"],)  # the global view is untouched


def test_a_snapshot_without_the_loader_has_the_global_view() -> None:
    snapshot = mem.snapshot()
    assert tiers_for(snapshot, 1).tiers == snapshot.tiers


@pytest.mark.django_db
def test_tenant_tiers_load_with_the_snapshot() -> None:
    provider = make_provider("http://127.0.0.1:9/v1", name="p")
    cheap, strong = make_model(provider, name="cheap"), make_model(provider, name="strong")
    make_tier("simple_ops", [cheap], complexity_max=0.4)
    make_tier("complex_reasoning", [strong], complexity_max=1.0)
    own, other = make_team("own").tenant, make_team("other").tenant
    make_tier("simple_ops", [strong], tenant=own)
    snapshot = load_snapshot(1)
    view = tiers_for(snapshot, own.pk)
    assert view.tiers["simple_ops"].deployments[0].name == "strong"
    assert view.tiers["simple_ops"].complexity_max == 0.4  # inherited
    assert [t.name for t in view.bands] == ["simple_ops", "complex_reasoning"]
    assert tiers_for(snapshot, other.pk).tiers["simple_ops"].deployments[0].name == "cheap"
    assert tiers_for(snapshot, own.pk) is view  # built once per snapshot and tenant
    assert view.tiers["complex_reasoning"] is snapshot.tiers["complex_reasoning"]


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_seeded_defaults_give_every_tier_a_band_and_a_premium_baseline() -> None:
    config_seed_defaults()
    bands = dict(Tier.objects.filter(tenant=None).values_list("name", "complexity_max"))
    assert bands == {"simple_ops": 0.35, "code_gen": 0.65, "complex_reasoning": 1.0}
    assert RoutingPolicy.objects.get(tenant=None).baseline_tier == "complex_reasoning"
    view = tiers_for(load_snapshot(1), None)
    assert [t.name for t in view.bands] == ["simple_ops", "code_gen", "complex_reasoning"]


@pytest.mark.django_db
def test_bands_and_output_caps_round_trip_through_config_files() -> None:
    config_import(
        text="routing:\n  baseline_tier: big\n  tiers:\n"
        "    - {name: small, model: deepseek-v3, complexity_max: 0.4, max_output_tokens: 2048}\n"
        "    - {name: big, model: gpt-5.5, complexity_max: 1}\n"
    )
    small = Tier.objects.get(name="small")
    assert (small.complexity_max, small.max_output_tokens) == (0.4, 2048)
    exported = parse_config(config_export())
    assert exported.routing is not None and exported.routing.baseline_tier == "big"
    assert [(t.name, t.complexity_max, t.max_output_tokens) for t in exported.routing.tiers] == [
        ("small", 0.4, 2048),
        ("big", 1.0, None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routing: {tiers: [{name: t, model: gpt-5.5, complexity_max: 1.5}]}", "greater than 0 and at most 1"),
        ("routing: {tiers: [{name: t, model: gpt-5.5, complexity_max: 0}]}", "greater than 0 and at most 1"),
        ("routing: {tiers: [{name: t, model: gpt-5.5, max_output_tokens: 0}]}", "between 1 and"),
    ],
)
def test_invalid_bands_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


@pytest.mark.django_db
def test_the_baseline_tier_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"routing\.baseline_tier at line 1: unknown tier 'nope'"):
        config_import(text="routing: {baseline_tier: nope, tiers: [{name: t, model: gpt-5.5}]}")


# -- through the gateway -------------------------------------------------------------------------


@pytest.fixture
def seeded(mock_upstream_url: str) -> dict[str, str]:
    """The seeded tier layout on the mock upstream; returns key secrets by purpose."""
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    models = {
        name: make_model(provider, name=name, upstream_model=f"{name}-1", input_cost=cost, output_cost=cost)
        for name, cost in (("cheap-model", "0.3"), ("mid-model", "3"), ("premium-model", "5"))
    }
    for tier, model in mem.TIER_MODELS.items():
        make_tier(
            tier,
            [models[model]],
            complexity_max=mem.SEEDED_BANDS[tier],
            capabilities=list(mem.SEEDED_CAPABILITIES[tier]),
        )
    team = make_team("acme")
    make_tier("code_gen", [models["premium-model"]], tenant=make_team("vip").tenant)
    return {
        "any": make_key(team)[1],
        "vip": make_key(make_team("vip", "core2"))[1],
        "cheap_only": make_key(team, allowed_models=["simple_ops"])[1],
        "no_tier": make_key(team, allowed_models=["mid-model"])[1],
    }


def client(gateway_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("text", "tier", "model"),
    [
        (LIGHT, "simple_ops", "cheap-model"),
        (CODE, "code_gen", "mid-model"),
        (HEAVY, "complex_reasoning", "premium-model"),
    ],
)
def test_auto_through_the_gateway(gateway_url, seeded, drained_events, text, tier, model):
    raw = client(gateway_url, seeded["any"]).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}]
    )
    assert raw.parse().choices[0].message.content.startswith("Mock reply to:")
    assert (raw.headers["x-gateway-tier"], raw.headers["x-gateway-model"]) == (tier, model)
    reason = raw.headers["x-gateway-route-reason"]
    assert reason.startswith("score=") and f"tier={tier}; top=" in reason
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.requested_model == "auto" and event.tier == tier
    assert event.route_reason["tier"] == tier and event.route_reason["features"]


@pytest.mark.django_db(transaction=True)
def test_auto_streams_with_the_route_reason(gateway_url, seeded):
    with client(gateway_url, seeded["any"]).chat.completions.with_streaming_response.create(
        model="auto", messages=[{"role": "user", "content": CODE}], stream=True
    ) as response:
        assert response.headers["x-gateway-tier"] == "code_gen"
        assert "tier=code_gen" in response.headers["x-gateway-route-reason"]
        assert "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)


@pytest.mark.django_db(transaction=True)
def test_smart_routing_off_and_key_bounds_through_the_gateway(gateway_url, seeded):
    off = client(gateway_url, seeded["any"]).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": LIGHT}], extra_headers={"X-Gateway-Smart-Routing": "0"}
    )
    assert off.headers["x-gateway-tier"] == "code_gen"
    assert off.headers["x-gateway-route-reason"] == "tier=code_gen; reason=smart_routing_off"
    bounded = client(gateway_url, seeded["cheap_only"]).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": HEAVY}]
    )
    assert bounded.headers["x-gateway-tier"] == "simple_ops"
    with pytest.raises(openai.BadRequestError) as excinfo:
        client(gateway_url, seeded["no_tier"]).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": HEAVY}]
        )
    assert excinfo.value.code == "model_not_allowed"


@pytest.mark.django_db(transaction=True)
def test_a_tenant_tier_override_through_the_gateway(gateway_url, seeded):
    for secret, model in ((seeded["vip"], "premium-model"), (seeded["any"], "mid-model")):
        raw = client(gateway_url, secret).chat.completions.with_raw_response.create(
            model="code_gen", messages=[{"role": "user", "content": "hi"}]
        )
        assert (raw.headers["x-gateway-tier"], raw.headers["x-gateway-model"]) == ("code_gen", model)
        assert "x-gateway-route-reason" not in raw.headers


@pytest.mark.django_db(transaction=True)
def test_models_lists_auto(gateway_url, seeded):
    ids = {m.id for m in client(gateway_url, seeded["any"]).models.list()}
    assert {"auto", "simple_ops", "code_gen", "complex_reasoning", "cheap-model"} <= ids
    assert "auto" not in {m.id for m in client(gateway_url, seeded["no_tier"]).models.list()}
    response = httpx2.get(f"{gateway_url}/v1/models", headers={"Authorization": f"Bearer {seeded['cheap_only']}"})
    assert {m["id"] for m in response.json()["data"]} == {"auto", "simple_ops"}


# -- admin ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_tier_admin_shows_bands_and_rejects_bad_ones(admin_client) -> None:
    model = make_model(make_provider("http://127.0.0.1:9/v1"), name="m1")
    make_tier("simple_ops", [model], complexity_max=0.35, capabilities=["grep"])
    make_tier("simple_ops", [], tenant=make_team("acme").tenant, complexity_max=0.5)
    listing = admin_client.get("/admin/routing/tier/")
    assert listing.status_code == 200
    assert "≤ 0.35".encode() in listing.content and "≤ 0.50".encode() in listing.content
    assert b"acme" in listing.content and b"global" in listing.content
    form = {
        "name": "big",
        "enabled": "on",
        "complexity_max": "1.5",
        "tier_models-TOTAL_FORMS": "0",
        "tier_models-INITIAL_FORMS": "0",
        "tier_models-MIN_NUM_FORMS": "0",
        "tier_models-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post("/admin/routing/tier/add/", form)
    assert response.status_code == 200 and b"greater than 0 and at most 1" in response.content
    assert admin_client.post("/admin/routing/tier/add/", {**form, "complexity_max": "1"}).status_code == 302

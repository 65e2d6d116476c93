"""`auto` on any configuration (bands derived from seed 003's thresholds) and enforced price caps."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from gateway_platform.config.snapshot import load_snapshot
from gateway_platform.errors import GatewayError
from providers.models import Provider
from routing.config_file import config_import
from routing.models import Tier
from routing.resolver import resolve, visible_models
from routing.tier_views import TierView, derived_band_edges, tiers_for, with_derived_bands
from serving.route_plan import plan_route
from tests.conftest import MOCK_PROVIDER_KEY_ENV
from tests.factories import make_key, make_team
from tests.routing import memory_snapshot as mem

SEED_TEMPLATE = (Path(__file__).resolve().parents[2] / "docs/examples/seed-000-gateway-config.yaml").read_text(
    encoding="utf-8"
)
HEAVY = "design the architecture of a multi-tenant event pipeline and weigh the trade-offs"
CODE = "write a python script that converts every markdown file in docs/ to html"
LIGHT = "list the files in the migrations folder"


def test_band_edges_follow_seed_003_thresholds() -> None:
    assert derived_band_edges(0) == ()
    assert derived_band_edges(1) == (1.0,)
    assert derived_band_edges(2) == (0.35, 1.0)
    assert derived_band_edges(3) == (0.35, 0.65, 1.0)
    five = derived_band_edges(5)
    assert five[0] == 0.35 and five[-2] == 0.65 and five[-1] == 1.0
    assert list(five) == sorted(set(five))


def test_tiers_without_bands_get_them_in_price_order_not_name_order() -> None:
    tiers = mem.seeded_tiers(bands=False)
    # Swap the models so name order and price order disagree.
    tiers["simple_ops"] = replace(tiers["simple_ops"], deployments=(mem.MODELS["premium-model"],))
    tiers["complex_reasoning"] = replace(tiers["complex_reasoning"], deployments=(mem.MODELS["cheap-model"],))
    view = TierView.of(tiers)
    assert [(t.name, t.complexity_max) for t in view.bands] == [
        ("complex_reasoning", 0.35),
        ("code_gen", 0.65),
        ("simple_ops", 1.0),
    ]
    assert view.tiers["code_gen"].complexity_max == 0.65  # named tiers carry the band too (cascades use it)


@pytest.mark.parametrize(("text", "tier"), [(LIGHT, "simple_ops"), (CODE, "code_gen"), (HEAVY, "complex_reasoning")])
def test_auto_routes_a_config_without_bands(text: str, tier: str) -> None:
    snapshot = mem.snapshot(mem.seeded_tiers(bands=False))
    route = plan_route(mem.exchange(), snapshot, mem.key(), mem.chat(text))
    assert route.tier == tier
    assert ("auto", "gateway-router") in visible_models(snapshot, mem.key())


def test_configured_bands_are_kept_and_unbanded_tiers_stay_out() -> None:
    tiers = mem.seeded_tiers()
    tiers["code_gen"] = replace(tiers["code_gen"], complexity_max=None)
    assert with_derived_bands(tiers) == tiers
    assert [t.name for t in TierView.of(tiers).bands] == ["simple_ops", "complex_reasoning"]


def test_a_model_above_the_tier_cap_is_skipped_and_its_fallback_serves() -> None:
    tiers = mem.seeded_tiers()
    tiers["code_gen"] = replace(
        tiers["code_gen"],
        deployments=(mem.MODELS["premium-model"], mem.MODELS["mid-model"]),
        max_cost_per_million=Decimal("3"),
    )
    route = resolve(mem.snapshot(tiers), mem.key(), "code_gen")
    assert [d.name for d in route.deployments] == ["mid-model"]


def test_a_tier_with_every_model_above_its_cap_is_out_of_auto_and_a_clear_400() -> None:
    tiers = mem.seeded_tiers(bands=False)
    tiers["simple_ops"] = replace(tiers["simple_ops"], max_cost_per_million=Decimal("0.15"))  # cheap-model: 0.3
    snapshot = mem.snapshot(tiers)
    view = tiers_for(snapshot, None)
    assert [(t.name, t.complexity_max) for t in view.bands] == [("code_gen", 0.35), ("complex_reasoning", 1.0)]
    with pytest.raises(GatewayError) as excinfo:
        resolve(snapshot, mem.key(), "simple_ops")
    assert excinfo.value.status == 400 and "max_cost_per_million" in excinfo.value.message
    assert plan_route(mem.exchange(), snapshot, mem.key(), mem.chat(CODE)).tier == "code_gen"


# -- seed 000's YAML, unchanged ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_seed_template_imported_unchanged_gives_working_auto() -> None:
    config_import(text=SEED_TEMPLATE, source="seed-000")
    assert set(Tier.objects.values_list("complexity_max", flat=True)) == {None}
    snapshot = load_snapshot(1)
    view = tiers_for(snapshot, None)
    # deepseek-v3 (0.27 per million input) is above simple_ops' 0.15 cap: that tier is skipped.
    assert view.tiers["simple_ops"].deployments == ()
    assert [(t.name, t.complexity_max) for t in view.bands] == [("code_gen", 0.35), ("complex_reasoning", 1.0)]
    key = mem.key()
    assert plan_route(mem.exchange(), snapshot, key, mem.chat(HEAVY)).tier == "complex_reasoning"
    assert plan_route(mem.exchange(), snapshot, key, mem.chat(CODE)).tier == "code_gen"
    assert Tier.objects.get(name="simple_ops").models_over_cost_cap() == ["deepseek-v3"]


@pytest.mark.django_db(transaction=True)
def test_auto_answers_through_the_gateway_after_importing_the_seed_template(mock_upstream_url, gateway_url) -> None:
    config_import(text=SEED_TEMPLATE, source="seed-000")
    for provider in Provider.objects.all():
        provider.base_url = mock_upstream_url + ("/v1" if provider.kind == "openai" else "")
        provider.api_key_env = MOCK_PROVIDER_KEY_ENV
        provider.save()  # saves bump the config version: the gateway reloads its snapshot
    simple_ops = Tier.objects.get(name="simple_ops")
    simple_ops.max_cost_per_million = Decimal("0.30")  # let deepseek-v3 (0.27) in
    simple_ops.save()
    secret = make_key(make_team("acme"))[1]
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)
    for text, tier, model in ((LIGHT, "simple_ops", "deepseek-v3"), (HEAVY, "complex_reasoning", "gpt-5.5")):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": text}]
        )
        assert raw.parse().choices[0].message.content
        assert (raw.headers["x-gateway-tier"], raw.headers["x-gateway-model"]) == (tier, model)

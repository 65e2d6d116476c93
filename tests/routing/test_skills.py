"""Skills: prompt prepending, forced tiers, unknown/disabled skills, tenant overrides, seeding, /v1/skills."""

from __future__ import annotations

import io

import httpx2
import openai
import pytest
from django.core.management import call_command

from gateway_platform.errors import GatewayError
from routing.models import Skill
from routing.skills import (
    EXTENSION,
    SkillCatalog,
    SkillInfo,
    default_skills,
    find_skill,
    load_skills,
    requested_skill,
    skills_seed_defaults,
    with_skill,
)
from serving.route_plan import plan_route
from tests.factories import make_key, make_model, make_provider, make_team, make_tier
from tests.routing import memory_snapshot as mem

SEED_SLUGS = {
    "brainstorming",
    "systematic-debugging",
    "code-review",
    "git-pushing",
    "concise-planning",
    "architecture-review",
    "quick-fix",
    "security-audit",
}
REVIEW = SkillInfo("code-review", "Code review", "Review a change.", "Review carefully.")
ARCH = SkillInfo("architecture-review", "Architecture review", "", "Think like an architect.", "complex_reasoning")
QUICK = SkillInfo("quick-fix", "Quick fix", "", "Smallest change.", "simple_ops")
OFF = SkillInfo("retired", "Retired", "", "Old.", enabled=False)
CATALOG = SkillCatalog(
    global_skills={s.slug: s for s in (REVIEW, ARCH, QUICK, OFF)},
    by_tenant={
        7: {
            "code-review": SkillInfo("code-review", "Code review (acme)", "", "Acme's checklist."),
            "quick-fix": SkillInfo("quick-fix", "Quick fix", "", "x", enabled=False),
            "acme-style": SkillInfo("acme-style", "Acme style", "", "Follow the Acme style guide."),
        }
    },
)


def snapshot_with_skills():
    return mem.snapshot(extensions={EXTENSION: CATALOG})


# -- pure pieces ---------------------------------------------------------------------------------


def test_the_prompt_is_prepended_to_the_system_prompt_or_inserted() -> None:
    body = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}
    assert with_skill(body, REVIEW)["messages"][0] == {"role": "system", "content": "Review carefully.\n\nBe brief."}
    assert body["messages"][0]["content"] == "Be brief."  # the input is not changed
    parts = {"messages": [{"role": "developer", "content": [{"type": "text", "text": "Rules."}]}]}
    assert with_skill(parts, REVIEW)["messages"][0]["content"] == [
        {"type": "text", "text": "Review carefully."},
        {"type": "text", "text": "Rules."},
    ]
    bare = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert with_skill(bare, REVIEW) == {
        "model": "m",
        "messages": [{"role": "system", "content": "Review carefully."}, {"role": "user", "content": "hi"}],
    }


def test_the_body_field_wins_over_the_header() -> None:
    assert requested_skill({b"x-gateway-skill": b" quick-fix "}, None) == "quick-fix"
    assert requested_skill({b"x-gateway-skill": b"quick-fix"}, "code-review") == "code-review"
    assert requested_skill({}, "  ") is None and requested_skill({b"x-gateway-skill": b""}, None) is None


def test_tenant_rows_override_hide_and_add() -> None:
    assert CATALOG.get(7, "code-review") == CATALOG.by_tenant[7]["code-review"]
    assert CATALOG.get(7, "quick-fix") is None  # a disabled tenant row hides the global skill
    assert CATALOG.get(8, "quick-fix") is QUICK
    assert CATALOG.get(8, "acme-style") is None
    assert CATALOG.get(None, "retired") is None
    assert [s.slug for s in CATALOG.visible(7)] == ["acme-style", "architecture-review", "code-review"]


def test_an_unknown_or_disabled_skill_is_a_400_listing_the_available_ones() -> None:
    snapshot = snapshot_with_skills()
    for slug in ("nope", "retired"):
        with pytest.raises(GatewayError) as excinfo:
            find_skill(snapshot, 8, slug, lambda tier: True)
        error = excinfo.value
        assert (error.status, error.code, error.param) == (400, "skill_not_found", "skill")
        assert error.message.endswith("Available skills: architecture-review, code-review, quick-fix.")
    with pytest.raises(GatewayError) as excinfo:
        find_skill(snapshot, 8, "nope", lambda tier: tier != "complex_reasoning")
    assert "architecture-review" not in excinfo.value.message  # it forces a tier this key may not use


# -- planning with skills --------------------------------------------------------------------------


def test_a_skill_is_applied_and_recorded() -> None:
    exchange = mem.exchange(x_gateway_skill="code-review")
    request = mem.chat("look at this diff", model="code_gen", system="Be brief.")
    route = plan_route(exchange, snapshot_with_skills(), mem.key(), request)
    assert route.tier == "code_gen" and exchange.skill == "code-review"
    assert request.body["messages"][0]["content"] == "Review carefully.\n\nBe brief."
    assert "skill" not in request.body


def test_a_forced_tier_overrides_auto_and_tier_names() -> None:
    for model in ("auto", "simple_ops"):
        exchange = mem.exchange()
        request = mem.chat("list the files", model=model, skill="architecture-review")
        route = plan_route(exchange, snapshot_with_skills(), mem.key(), request)
        assert route.tier == "complex_reasoning"
        assert exchange.route_header == "tier=complex_reasoning; reason=skill:architecture-review"
        assert exchange.route_reason["reason"] == "skill:architecture-review"
        assert exchange.route_reason["skill"] == "architecture-review"


def test_a_concrete_model_keeps_its_model_but_gets_the_prompt() -> None:
    exchange = mem.exchange()
    request = mem.chat("design it", model="cheap-model", skill="architecture-review")
    route = plan_route(exchange, snapshot_with_skills(), mem.key(), request)
    assert route.tier is None and route.deployments[0].name == "cheap-model"
    assert request.body["messages"][0]["content"] == "Think like an architect."
    assert exchange.skill == "architecture-review" and exchange.route_header == ""


def test_a_forced_tier_the_key_may_not_use_is_a_400() -> None:
    with pytest.raises(GatewayError) as excinfo:
        plan_route(
            mem.exchange(), snapshot_with_skills(), mem.key("simple_ops"), mem.chat("x", skill="architecture-review")
        )
    assert (excinfo.value.status, excinfo.value.code) == (400, "model_not_allowed")


def test_a_forced_tier_that_does_not_exist_is_ignored() -> None:
    catalog = SkillCatalog(global_skills={"odd": SkillInfo("odd", "Odd", "", "p", forced_tier="no_such_tier")})
    exchange = mem.exchange()
    route = plan_route(
        exchange, mem.snapshot(extensions={EXTENSION: catalog}), mem.key(), mem.chat("list the files", skill="odd")
    )
    assert route.tier == "simple_ops" and exchange.route_reason["reason"] == "auto"


# -- database: loading and seeding --------------------------------------------------------------------


@pytest.mark.django_db
def test_skills_load_with_the_snapshot() -> None:
    tenant = make_team("acme").tenant
    Skill.objects.create(slug="code-review", name="Global", system_prompt="g")
    Skill.objects.create(slug="code-review", name="Acme", system_prompt="a", tenant=tenant)
    catalog = load_skills()
    assert [s.name for s in catalog.visible(tenant.pk)] == ["Acme"]
    assert [s.name for s in catalog.visible(None)] == ["Global"]


def test_the_seed_skills_are_real_methodology_prompts() -> None:
    skills = default_skills()
    assert {s["slug"] for s in skills} == SEED_SLUGS
    for skill in skills:
        lines = skill["system_prompt"].strip().splitlines()
        assert 8 <= len(lines) <= 20, skill["slug"]
        assert skill["name"] and skill["description"]
    forced = {s["slug"]: s["forced_tier"] for s in skills if s["forced_tier"]}
    assert forced == {
        "architecture-review": "complex_reasoning",
        "security-audit": "complex_reasoning",
        "quick-fix": "simple_ops",
        "git-pushing": "simple_ops",
    }


@pytest.mark.django_db
def test_seeding_creates_missing_skills_and_keeps_admin_edits() -> None:
    first = skills_seed_defaults()
    assert set(first.created) == SEED_SLUGS and first.kept == ()
    Skill.objects.filter(slug="quick-fix").update(system_prompt="our own", enabled=False)
    Skill.objects.filter(slug="brainstorming").delete()
    again = skills_seed_defaults()
    assert again.created == ("brainstorming",) and len(again.kept) == 7
    quick = Skill.objects.get(slug="quick-fix")
    assert (quick.system_prompt, quick.enabled) == ("our own", False)
    out = io.StringIO()
    call_command("seed_defaults", stdout=out)
    assert "skills: 8 kept" in out.getvalue()


# -- through the gateway -------------------------------------------------------------------------


@pytest.fixture
def gateway_skills(mock_upstream_url: str) -> dict[str, str]:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    cheap = make_model(provider, name="cheap-model", upstream_model="cheap-1")
    premium = make_model(provider, name="premium-model", upstream_model="premium-1")
    make_tier("simple_ops", [cheap], complexity_max=0.35)
    make_tier("complex_reasoning", [premium], complexity_max=1.0)
    Skill.objects.create(
        slug="echo",
        name="Echo",
        description="Proves the prompt reached the model.",
        system_prompt="[[mock: reply=SKILL%20APPLIED]]",
    )
    Skill.objects.create(
        slug="architecture-review", name="Architecture review", system_prompt="Think.", forced_tier="complex_reasoning"
    )
    Skill.objects.create(slug="old", name="Old", system_prompt="x", enabled=False)
    team = make_team("acme")
    Skill.objects.create(slug="echo", name="Echo", system_prompt="x", enabled=False, tenant=make_team("hidden").tenant)
    Skill.objects.create(slug="acme-only", name="Acme only", system_prompt="Acme.", tenant=team.tenant)
    return {
        "acme": make_key(team)[1],
        "hidden": make_key(make_team("hidden", "t2"))[1],
        "cheap_only": make_key(team, allowed_models=["simple_ops"])[1],
    }


def _client(gateway_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)


@pytest.mark.django_db(transaction=True)
def test_the_skill_header_reaches_the_model_and_the_usage_event(gateway_url, gateway_skills, drained_events):
    raw = _client(gateway_url, gateway_skills["acme"]).chat.completions.with_raw_response.create(
        model="simple_ops", messages=[{"role": "user", "content": "hello"}], extra_headers={"X-Gateway-Skill": "echo"}
    )
    assert raw.parse().choices[0].message.content == "SKILL APPLIED"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.skill == "echo"


@pytest.mark.django_db(transaction=True)
def test_a_forced_tier_from_the_body_field(gateway_url, gateway_skills, drained_events):
    raw = _client(gateway_url, gateway_skills["acme"]).chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "list the files"}],
        extra_body={"skill": "architecture-review"},
    )
    assert raw.headers["x-gateway-tier"] == "complex_reasoning"
    assert raw.headers["x-gateway-route-reason"] == "tier=complex_reasoning; reason=skill:architecture-review"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.skill == "architecture-review"
    assert event.route_reason["reason"] == "skill:architecture-review"


@pytest.mark.django_db(transaction=True)
def test_skill_errors_through_the_gateway(gateway_url, gateway_skills):
    acme = _client(gateway_url, gateway_skills["acme"])
    for slug in ("missing", "old"):
        with pytest.raises(openai.BadRequestError) as excinfo:
            acme.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Gateway-Skill": slug}
            )
        assert excinfo.value.code == "skill_not_found"
        assert "Available skills: acme-only, architecture-review, echo." in str(excinfo.value)
    with pytest.raises(openai.BadRequestError) as excinfo:
        _client(gateway_url, gateway_skills["hidden"]).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], extra_body={"skill": "echo"}
        )
    assert excinfo.value.code == "skill_not_found"
    with pytest.raises(openai.BadRequestError) as excinfo:
        _client(gateway_url, gateway_skills["cheap_only"]).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], extra_body={"skill": "architecture-review"}
        )
    assert excinfo.value.code == "model_not_allowed"


@pytest.mark.django_db(transaction=True)
def test_v1_skills_lists_what_the_key_can_use(gateway_url, gateway_skills):
    def listing(secret: str) -> dict[str, dict[str, object]]:
        response = httpx2.get(f"{gateway_url}/v1/skills", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 200 and response.json()["object"] == "list"
        assert response.headers["x-request-id"]
        return {item["id"]: item for item in response.json()["data"]}

    acme = listing(gateway_skills["acme"])
    assert list(acme) == ["acme-only", "architecture-review", "echo"]
    assert acme["architecture-review"] == {
        "id": "architecture-review",
        "name": "Architecture review",
        "description": "",
        "forced_tier": "complex_reasoning",
    }
    assert acme["echo"]["forced_tier"] is None
    assert list(listing(gateway_skills["hidden"])) == ["architecture-review"]
    assert list(listing(gateway_skills["cheap_only"])) == ["acme-only", "echo"]
    assert httpx2.get(f"{gateway_url}/v1/skills").status_code == 401


# -- admin ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_skill_admin_lists_searches_filters_and_validates(admin_client) -> None:
    tenant = make_team("acme").tenant
    make_tier("complex_reasoning", [make_model(make_provider("http://127.0.0.1:9/v1"))])
    Skill.objects.create(slug="code-review", name="Code review", system_prompt="Review.")
    Skill.objects.create(slug="code-review", name="Acme review", system_prompt="Acme.", tenant=tenant, enabled=False)
    listing = admin_client.get("/admin/routing/skill/", {"q": "review", "enabled__exact": "0"})
    assert listing.status_code == 200
    assert b"Acme review" in listing.content and b"Code review" not in listing.content
    form = {"slug": "arch", "name": "Arch", "system_prompt": "Think.", "forced_tier": "nope", "enabled": "on"}
    response = admin_client.post("/admin/routing/skill/add/", form)
    assert response.status_code == 200 and b"No tier &#x27;nope&#x27;. Tiers: complex_reasoning." in response.content
    response = admin_client.post("/admin/routing/skill/add/", {**form, "forced_tier": "complex_reasoning"})
    assert response.status_code == 302
    assert Skill.objects.get(slug="arch").forced_tier == "complex_reasoning"

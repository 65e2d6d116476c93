"""Cascade routing: which tier is "next cheaper", when a cascade applies, outcome rows, export, admin."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from billing import usage
from billing.models import UsageEvent
from gateway_platform.config.snapshot import KeyInfo, TierInfo
from providers.adapters.base import Deployment, ProviderConfig
from routing.admin_cascade import escalation_summary
from routing.cascade import cheaper_tier, plan_cascade, query_hash
from routing.models import RoutingOutcome
from routing.outcomes import write_outcomes
from routing.resolver import Route
from tests.factories import make_team

PROVIDER = ProviderConfig(1, "p", "openai", "http://upstream", None, 1, 1, 1, 1)


def deployment(name: str) -> Deployment:
    return Deployment(1, name, name, PROVIDER, Decimal(1), Decimal(2), 128_000, None)


def tier(name: str, *, band: float | None = None, cost: str | None = None, models: tuple[str, ...] = ()) -> TierInfo:
    return TierInfo(
        id=1,
        name=name,
        description="",
        capabilities=(),
        deployments=tuple(deployment(m) for m in (models or (f"{name}-model",))),
        complexity_max=band,
        max_cost_per_million=Decimal(cost) if cost else None,
    )


def key(*allowed: str) -> KeyInfo:
    return KeyInfo(1, "k", "gw-", 1, "team", 1, "acme", True, frozenset(allowed), None, False, None, None)


BANDED = {t.name: t for t in (tier("light", band=0.35), tier("standard", band=0.65), tier("heavy", band=1.0))}
PRICED = {t.name: t for t in (tier("simple_ops", cost="0.15"), tier("code_gen", cost="3"), tier("premium", cost="15"))}
MESSAGES = [{"role": "user", "content": "What does this error mean?"}]


def route_to(tiers: dict[str, TierInfo], name: str) -> Route:
    return Route(requested=name, tier=name, deployments=tiers[name].deployments)


def test_next_cheaper_is_the_next_lower_band():
    assert cheaper_tier(BANDED, "heavy").name == "standard"
    assert cheaper_tier(BANDED, "standard").name == "light"
    assert cheaper_tier(BANDED, "light") is None
    assert cheaper_tier(BANDED, "unknown") is None


def test_without_bands_the_next_lower_max_cost_decides():
    assert cheaper_tier(PRICED, "premium").name == "code_gen"
    assert cheaper_tier(PRICED, "code_gen").name == "simple_ops"
    assert cheaper_tier(PRICED, "simple_ops") is None
    unpriced = {**PRICED, "adhoc": tier("adhoc")}
    assert cheaper_tier(unpriced, "adhoc") is None


def test_a_tier_without_models_is_skipped():
    tiers = {**BANDED, "standard": TierInfo(2, "standard", "", (), (), complexity_max=0.65)}
    assert cheaper_tier(tiers, "heavy").name == "light"


def plan(tiers: dict[str, TierInfo], name: str, *, allowed: tuple[str, ...] = (), enabled: bool = True):
    return plan_cascade(tiers, key(*allowed), route_to(tiers, name), enabled=enabled, threshold=0.6, messages=MESSAGES)


def test_a_cascade_is_planned_only_when_it_can_save_something():
    planned = plan(BANDED, "standard")
    assert planned is not None
    assert (planned.requested_tier, planned.cheap_tier) == ("standard", "light")
    assert planned.cheap_route.deployments == BANDED["light"].deployments
    assert planned.question.text == "What does this error mean?"
    assert plan(BANDED, "standard", enabled=False) is None
    assert plan(BANDED, "light") is None  # nothing cheaper
    assert plan(BANDED, "standard", allowed=("standard",)) is None  # the key may not use the cheaper tier
    same = {**BANDED, "light": tier("light", band=0.35, models=("standard-model",))}
    assert plan(same, "standard") is None  # the same model: nothing to save
    concrete = Route(requested="gpt", tier=None, deployments=(deployment("gpt"),))
    assert plan_cascade(BANDED, key(), concrete, enabled=True, threshold=0.6, messages=MESSAGES) is None


def test_the_query_hash_ignores_whitespace_but_not_words():
    spaced = [{"role": "user", "content": "  What does   this error\nmean? "}]
    assert query_hash(MESSAGES) == query_hash(spaced)
    assert query_hash(MESSAGES) != query_hash([{"role": "user", "content": "What does that error mean?"}])
    assert len(query_hash(MESSAGES)) == 64


# -- outcome rows -----------------------------------------------------------------------------------


def usage_record(request_id: str, *, tenant_id: int | None, escalated: bool, status: int = 200) -> dict:
    now = timezone.now()
    decision = {
        "requested_tier": "standard",
        "initial_tier": "light",
        "final_tier": "standard" if escalated else "light",
        "escalated": escalated,
        "reason": "low quality: refusal" if escalated else "passed",
        "quality_score": 0.2 if escalated else 0.9,
        "quality_reasons": ["refusal"] if escalated else [],
        "threshold": 0.6,
        "complexity": 0.3,
        "query_hash": "ab" * 32,
    }
    record = usage.UsageRecord(
        request_id=request_id,
        endpoint="chat.completions",
        started_at=now,
        finished_at=now,
        status_code=status,
        tenant_id=tenant_id,
        tier=decision["final_tier"],
        model="standard-model" if escalated else "light-model",
        latency_ms=420,
        cost_usd=Decimal("0.0012"),
        route_reason={"score": 0.3, "cascade": decision},
    )
    return json.loads(record.to_json())


@pytest.mark.django_db
def test_the_usage_drain_writes_outcomes_once():
    tenant = make_team().tenant
    records = [
        usage_record("req-cheap", tenant_id=tenant.pk, escalated=False),
        usage_record("req-escalated", tenant_id=tenant.pk, escalated=True, status=502),
        {**usage_record("req-plain", tenant_id=None, escalated=False), "route_reason": {}},
    ]
    usage.write_events(records)
    usage.write_events(records)  # a re-delivered batch

    outcomes = {o.request_id: o for o in RoutingOutcome.objects.all()}
    assert set(outcomes) == {"req-cheap", "req-escalated"}
    cheap, escalated = outcomes["req-cheap"], outcomes["req-escalated"]
    assert (cheap.initial_tier, cheap.final_tier, cheap.escalated, cheap.success) == ("light", "light", False, True)
    assert (escalated.final_tier, escalated.escalated, escalated.success) == ("standard", True, False)
    assert escalated.reason == "low quality: refusal" and escalated.quality_score == 0.2
    assert (escalated.complexity_score, escalated.latency_ms, escalated.tenant_id) == (0.3, 420, tenant.pk)
    assert write_outcomes([]) == 0


@pytest.mark.django_db
def test_export_trajectories_writes_jsonl(tmp_path):
    tenant = make_team("traj").tenant
    usage.write_events([usage_record(f"req-{n}", tenant_id=tenant.pk, escalated=n % 2 == 1) for n in range(3)])
    RoutingOutcome.objects.filter(request_id="req-0").update(created_at=timezone.now() - timedelta(days=3))

    out = io.StringIO()
    call_command("export_trajectories", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["req-0", "req-1", "req-2"]
    escalated = lines[1]
    assert escalated["requested_tier"] == "standard" and escalated["quality_reasons"] == ["refusal"]
    assert escalated["threshold"] == 0.6 and escalated["model"] == "standard-model"
    assert escalated["cost_usd"] == "0.0012000000" and escalated["escalated"] is True

    path = tmp_path / "trajectory.jsonl"
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    call_command("export_trajectories", "--since", since, "--tenant", "traj", "-o", str(path), stdout=io.StringIO())
    assert [json.loads(line)["request_id"] for line in path.read_text().splitlines()] == ["req-1", "req-2"]


@pytest.mark.django_db
def test_export_trajectories_rejects_bad_arguments():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a date"):
        call_command("export_trajectories", "--since", "yesterday")
    with pytest.raises(CommandError, match="no tenant"):
        call_command("export_trajectories", "--tenant", "nobody")


# -- admin ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_lists_outcomes_with_escalation_rates_per_tier():
    tenant = make_team().tenant
    usage.write_events([usage_record(f"adm-{n}", tenant_id=tenant.pk, escalated=n < 1) for n in range(4)])
    summary = escalation_summary(RoutingOutcome.objects.all())
    assert summary == [
        {
            "initial_tier": "light",
            "total": 4,
            "escalated_count": 1,
            "succeeded": 4,
            "mean_quality": pytest.approx((0.2 + 0.9 * 3) / 4),
            "escalation_rate": 0.25,
            "success_rate": 1.0,
        }
    ]
    user = get_user_model().objects.create_superuser(f"root-{uuid.uuid4().hex[:8]}", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    response = client.get("/admin/routing/routingoutcome/?escalated__exact=1")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="escalation-summary"' in page and "25 %" not in page and "100 %" in page  # filtered: 1 of 1
    assert client.get("/admin/routing/routingoutcome/").status_code == 200
    assert client.get("/admin/routing/guardrailpolicy/add/").status_code == 200
    assert UsageEvent.objects.count() == 4


def test_a_route_downgraded_after_planning_skips_the_cascade():
    from serving.cascade import _applies
    from serving.chat_plan import ChatPlan
    from serving.exchange import Exchange

    planned = ChatPlan(exchange=Exchange("r", "chat", {}), body={}, cascade=plan(BANDED, "standard"))
    assert _applies(planned, route_to(BANDED, "standard"))
    assert not _applies(planned, route_to(BANDED, "light"))  # a budget moved the request down a tier
    assert not _applies(ChatPlan(exchange=Exchange("r", "chat", {}), body={}), route_to(BANDED, "standard"))

"""The billing management API: budget CRUD with role rules, budget status, aggregated usage, the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Budget, UsageRollup
from tenants.models import TenantRole
from tests.tenants.world import World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def client_for(world: World, role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


def finance_client(world: World) -> APIClient:
    user = get_user_model().objects.create_user("finance")
    TenantRole.objects.create(tenant=world.tenant, user=user, role=TenantRole.Role.FINANCE)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_superuser_creates_reads_updates_and_deletes_budgets(world):
    client = client_for(world, "root")
    created = client.post(
        "/api/budgets/",
        {"api_key": world.keys["owner"].pk, "model": "gpt-x", "amount_usd": "12.5", "period": "daily"},
        format="json",
    )
    assert created.status_code == 201, created.data
    assert created.data["thresholds"] == [50, 80, 100] and created.data["action"] == "block"
    url = f"/api/budgets/{created.data['id']}/"
    updated = client.patch(url, {"amount_usd": "20", "thresholds": [90, 75]}, format="json")
    assert updated.status_code == 200 and updated.data["thresholds"] == [75, 90]
    assert client.patch(url, {"team": world.team.pk}, format="json").data["team"] is None  # scope is fixed
    assert client.delete(url).status_code == 204
    assert not Budget.objects.filter(pk=created.data["id"]).exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount_usd": "5"}, "non_field_errors"),
        ({"amount_usd": "5", "tenant": "T", "team": "W"}, "non_field_errors"),
        ({"amount_usd": "5", "team": "W", "model": "m"}, "model"),
        ({"amount_usd": "5", "team": "W", "action": "downgrade"}, "downgrade_tier"),
        ({"amount_usd": "0", "team": "W"}, "amount_usd"),
        ({"amount_usd": "5", "team": "W", "thresholds": [0]}, "thresholds"),
    ],
)
def test_invalid_budgets_are_400s_naming_the_field(world, payload, field):
    ids = {"T": world.tenant.pk, "W": world.team.pk}
    body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in payload.items()}
    response = client_for(world, "root").post("/api/budgets/", body, format="json")
    assert response.status_code == 400
    assert field in response.data


def test_tenant_admins_manage_their_tenants_budgets_only(world):
    client = client_for(world, "tenant_admin")
    listed = {row["id"] for row in client.get("/api/budgets/").data["results"]}
    assert listed == {world.budgets[name].pk for name in ("tenant", "team", "key")}
    foreign = world.budgets["foreign"]
    assert client.get(f"/api/budgets/{foreign.pk}/").status_code == 404
    assert client.post("/api/budgets/", {"team": world.foreign.pk, "amount_usd": "1"}, format="json").status_code == 400
    assert client.post("/api/budgets/", {"team": world.sibling.pk, "amount_usd": "1"}, format="json").status_code == 201
    own = world.budgets["team"]
    assert client.patch(f"/api/budgets/{own.pk}/", {"amount_usd": "60"}, format="json").status_code == 200


def test_finance_reads_budgets_but_cannot_change_them(world):
    client = finance_client(world)
    own = world.budgets["team"]
    assert client.get(f"/api/budgets/{own.pk}/").status_code == 200
    assert client.patch(f"/api/budgets/{own.pk}/", {"amount_usd": "1"}, format="json").status_code == 403
    assert client.post("/api/budgets/", {"team": world.team.pk, "amount_usd": "1"}, format="json").status_code == 403


@pytest.mark.parametrize("role", ["owner", "member", "outsider"])
def test_team_roles_see_no_budgets_yet(world, role):
    client = client_for(world, role)
    assert client.get("/api/budgets/").data["results"] == []
    assert client.post("/api/budgets/", {"team": world.team.pk, "amount_usd": "1"}, format="json").status_code == 403


def test_anonymous_calls_are_401():
    assert APIClient().get("/api/budgets/").status_code == 401
    assert APIClient().get("/api/usage/").status_code == 401


def test_budget_status_reads_the_period_and_spend(world):
    budget = world.budgets["team"]
    response = client_for(world, "tenant_admin").get(f"/api/budgets/{budget.pk}/status/")
    assert response.status_code == 200
    assert response.data["source"] == "database"
    assert Decimal(response.data["remaining_usd"]) == Decimal("50")
    assert response.data["period_start"] <= timezone.now().isoformat() < response.data["period_end"]


def rollup(world: World, *, hour: datetime, model: str, cost: str, tenant=None, team=None, key=None) -> None:
    UsageRollup.objects.create(
        granularity="hour",
        period_start=hour,
        tenant=tenant or world.tenant,
        team=team or world.team,
        api_key=key or world.keys["owner"],
        model=model,
        provider="p",
        tier="t",
        requests=2,
        cost_usd=Decimal(cost),
        prompt_tokens=10,
    )


def test_usage_is_aggregated_filtered_and_grouped(world):
    h1 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    rollup(world, hour=h1, model="a", cost="1.5")
    rollup(world, hour=h1 + timedelta(hours=1), model="b", cost="0.5")
    rollup(
        world, hour=h1, model="a", cost="7", tenant=world.foreign_tenant, team=world.foreign, key=world.keys["foreign"]
    )
    client = client_for(world, "tenant_admin")
    query = {"start": "2026-11-20", "end": "2026-11-20"}

    [total] = client.get("/api/usage/", query).data["results"]
    assert Decimal(total["cost_usd"]) == Decimal("2.0") and total["requests"] == 4 and "model" not in total

    by_model = client.get("/api/usage/", {**query, "group_by": "model,period"}).data["results"]
    assert [(r["model"], Decimal(r["cost_usd"])) for r in by_model] == [("a", Decimal("1.5")), ("b", Decimal("0.5"))]
    assert by_model[0]["period_start"].startswith("2026-11-20T10:00")

    only_b = client.get("/api/usage/", {**query, "model": "b", "group_by": ["tenant"]}).data["results"]
    assert only_b == [{**only_b[0], "tenant_id": world.tenant.pk}] and Decimal(only_b[0]["cost_usd"]) == Decimal("0.5")

    everything = client_for(world, "root").get("/api/usage/", {**query, "group_by": "tenant"}).data["results"]
    assert len(everything) == 2
    assert client.get("/api/usage/", {"start": "2026-11-21", "end": "2026-11-21"}).data["results"][0]["requests"] == 0


def test_usage_for_roles_without_reports_is_empty_and_bad_queries_are_400(world):
    rollup(world, hour=timezone.now().replace(minute=0, second=0, microsecond=0), model="a", cost="1")
    assert client_for(world, "member").get("/api/usage/").data["results"][0]["requests"] == 0
    assert finance_client(world).get("/api/usage/").data["results"][0]["requests"] == 2
    client = client_for(world, "root")
    assert client.get("/api/usage/", {"group_by": "colour"}).status_code == 400
    assert client.get("/api/usage/", {"start": "2026-12-01", "end": "2026-11-01"}).status_code == 400
    assert client.get("/api/usage/", {"granularity": "minute"}).status_code == 400
    assert client.get("/api/usage/", {"start": "2020-01-01", "end": "2026-01-01"}).status_code == 400


def test_the_schema_documents_budgets_and_usage(world):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/budgets/", "/api/budgets/{id}/", "/api/budgets/{id}/status/", "/api/usage/"):
        assert path in schema["paths"], path
    parameters = {p["name"] for p in schema["paths"]["/api/usage/"]["get"]["parameters"]}
    assert {"start", "end", "granularity", "group_by", "tenant", "model", "tier"} <= parameters


def test_the_model_filter_is_no_oracle_for_other_tenants_models(world):
    h1 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    rollup(world, hour=h1, model="shared", cost="1")
    rollup(
        world,
        hour=h1,
        model="globex-only",
        cost="3",
        tenant=world.foreign_tenant,
        team=world.foreign,
        key=world.keys["foreign"],
    )
    client = client_for(world, "tenant_admin")
    query = {"start": "2026-11-20", "end": "2026-11-20", "group_by": "model"}
    foreign = client.get("/api/usage/", {**query, "model": "globex-only"})
    missing = client.get("/api/usage/", {**query, "model": "no-such-model"})
    assert foreign.status_code == missing.status_code == 200
    assert foreign.data["results"] == missing.data["results"] == []

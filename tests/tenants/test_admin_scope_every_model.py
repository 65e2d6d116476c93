"""Every admin of tenant data is tenant-scoped: the full matrix of admin models by roles by tenants.

The list of admins comes from the admin site itself, so a new admin that forgets
the scoping mixin fails ``test_every_admin_declares_its_scope``. Tenant admins
manage their own tenant's tiers, skills, routing policy, guardrail and cache
policy; global rows (no tenant) are shown to them read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Model
from django.test import Client
from django.utils import timezone

from billing.models import AlertChannel, BudgetAlert, KeyModelLimit
from caching.models import CacheEntry, CachePolicy, CacheStat
from routing.models import GuardrailPolicy, ModelAlias, RoutingOutcome, RoutingPolicy, Skill, Tier
from tenants import admin_group
from tenants.admin_scoping import GlobalConfigAdminMixin, TenantScopedAdminMixin
from tenants.models import Tenant, TenantRole
from tests.tenants.world import World, build_world

pytestmark = pytest.mark.django_db

# Admins of data that belongs to nobody's tenant: platform staff only (never the "Tenant admins" group).
PLATFORM_ONLY = {"auth.user", "auth.group", "tenants.personaltoken"}
PLATFORM_ONLY_APPS = {"axes"}  # login throttling records


def _platform_only(model: type[Model]) -> bool:
    return model._meta.label_lower in PLATFORM_ONLY or model._meta.app_label in PLATFORM_ONLY_APPS


def _admin_url(model: type[Model], suffix: str = "") -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{suffix}"


def _rows(world: World) -> dict[type[Model], Callable[[Tenant | None], Model]]:
    """A row of each tenant-scoped model for a tenant (None: a global row, where the model has them)."""
    now = timezone.now()
    key_of = {world.tenant.pk: world.keys["member"], world.foreign_tenant.pk: world.keys["foreign"]}

    def budget_alert(tenant: Tenant | None) -> Model:
        from billing.models import Budget

        assert tenant is not None
        budget = Budget.objects.filter(tenant=tenant).first() or Budget.objects.create(tenant=tenant, amount_usd=9)
        return BudgetAlert.objects.create(
            budget=budget, period_start=now, threshold=50, spent_usd=1, amount_usd=budget.amount_usd
        )

    def cache_entry(tenant: Tenant | None) -> Model:
        return CacheEntry.objects.create(
            tenant=tenant,
            namespace="n",
            context_hash="c",
            exact_key=f"k-{tenant}",
            prompt_text=f"secret prompt of {tenant}",
            response={},
            model="m",
            expires_at=now + timedelta(hours=1),
        )

    return {
        Tier: lambda t: Tier.objects.create(tenant=t, name=f"tier-{t or 'global'}"),
        Skill: lambda t: Skill.objects.create(tenant=t, slug=f"skill-{t or 'global'}", name="s", system_prompt="p"),
        RoutingPolicy: lambda t: RoutingPolicy.objects.create(tenant=t),
        ModelAlias: lambda t: ModelAlias.objects.create(tenant=t, pattern=f"alias-{t or 'global'}", target="auto"),
        GuardrailPolicy: lambda t: GuardrailPolicy.objects.create(tenant=t),
        CachePolicy: lambda t: CachePolicy.objects.create(tenant=t),
        CacheEntry: cache_entry,
        CacheStat: lambda t: CacheStat.objects.create(tenant=t, day=date(2026, 1, 1)),
        RoutingOutcome: lambda t: RoutingOutcome.objects.create(
            request_id=f"out-{t}", tenant=t, query_hash="q", initial_tier="a", final_tier="b"
        ),
        AlertChannel: lambda t: AlertChannel.objects.create(tenant=t, kind="email", target="ops@example.com"),
        BudgetAlert: budget_alert,
        KeyModelLimit: lambda t: KeyModelLimit.objects.create(api_key=key_of[t.pk], model="m", rpm_limit=1),
    }


WITH_GLOBAL_ROWS = (Tier, Skill, RoutingPolicy, GuardrailPolicy, CachePolicy, ModelAlias)


@pytest.fixture
def world() -> World:
    return build_world()


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_every_admin_declares_its_scope():
    for model, model_admin in admin.site._registry.items():
        if _platform_only(model):
            continue
        assert isinstance(model_admin, TenantScopedAdminMixin | GlobalConfigAdminMixin), (
            f"{model._meta.label}: an admin of tenant data must use TenantScopedAdminMixin "
            "(or GlobalConfigAdminMixin for platform configuration)"
        )


def test_platform_only_admins_are_closed_to_tenant_admins(world):
    client = _client(world.users["tenant_admin"])
    for model in admin.site._registry:
        if _platform_only(model) and model._meta.label_lower != "tenants.personaltoken":  # own tokens only
            assert client.get(_admin_url(model)).status_code == 403, model._meta.label


def test_every_scoped_model_is_in_the_matrix(world):
    scoped = {m for m, a in admin.site._registry.items() if isinstance(a, TenantScopedAdminMixin)}
    covered = set(_rows(world)) | {Tenant, TenantRole} | {type(o) for o in _matrix_world_rows(world)}
    assert scoped <= covered, scoped - covered


def _matrix_world_rows(world: World) -> list[Model]:
    return [world.team, world.keys["member"], world.budgets["team"], world.usage["own"], *world.team.memberships.all()]


@pytest.mark.parametrize(
    "model",
    [Tier, Skill, RoutingPolicy, GuardrailPolicy, CachePolicy, ModelAlias, CacheEntry, CacheStat, RoutingOutcome],
)
def test_matrix_of_roles_and_tenants(world, model):
    make = _rows(world)[model]
    own, foreign = make(world.tenant), make(world.foreign_tenant)
    global_row = make(None) if model in WITH_GLOBAL_ROWS else None
    drifter = get_user_model().objects.create_user("drifter", is_staff=True)
    admin_group.enroll(drifter)  # staff in the group but administering no tenant

    root = _client(world.users["root"])
    shown = {o.pk for o in root.get(_admin_url(model)).context["cl"].result_list}
    assert {own.pk, foreign.pk} <= shown

    tenant_admin = _client(world.users["tenant_admin"])
    response = tenant_admin.get(_admin_url(model))
    assert response.status_code == 200
    shown = {o.pk for o in response.context["cl"].result_list}
    expected = {own.pk} | ({global_row.pk} if global_row is not None else set())
    assert shown == expected, (model, shown)
    assert str(world.foreign_tenant.slug) not in response.content.decode()
    assert tenant_admin.get(_admin_url(model, f"{own.pk}/change/")).status_code == 200
    assert tenant_admin.get(_admin_url(model, f"{foreign.pk}/change/")).status_code == 302  # "not found"

    for role in ("owner", "member", "outsider"):
        response = _client(world.users[role]).get(_admin_url(model))
        assert response.status_code == 302 and "/login/" in response["Location"], role
    assert _client(drifter).get(_admin_url(model)).status_code == 403


@pytest.mark.parametrize("model", WITH_GLOBAL_ROWS)
def test_global_rows_are_read_only_for_tenant_admins(world, model):
    global_row = _rows(world)[model](None)
    client = _client(world.users["tenant_admin"])
    page = client.get(_admin_url(model, f"{global_row.pk}/change/"))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(_admin_url(model, f"{global_row.pk}/delete/"), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=global_row.pk).exists()


def test_the_tenant_admins_group_holds_the_routing_and_cache_permissions():
    group = admin_group.ensure_tenant_admin_group()
    codenames = set(group.permissions.values_list("codename", flat=True))
    for name in ("tier", "skill", "routingpolicy", "guardrailpolicy", "cachepolicy"):
        assert {f"add_{name}", f"change_{name}", f"view_{name}"} <= codenames, name
    assert {"view_routingoutcome", "view_cachestat", "view_cacheentry", "delete_cacheentry"} <= codenames
    assert "change_routingoutcome" not in codenames and "view_configsection" not in codenames


def test_tenant_admin_manages_their_own_tier_and_skill(world):
    client = _client(world.users["tenant_admin"])
    response = client.post(
        _admin_url(Tier, "add/"),
        {
            "tenant": world.tenant.pk,
            "name": "acme-fast",
            "enabled": "on",
            "capabilities": "",
            "tier_models-TOTAL_FORMS": "0",
            "tier_models-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Tier.objects.get(name="acme-fast").tenant == world.tenant
    # A tier for another tenant, or a global one, cannot be created.
    for tenant in (world.foreign_tenant.pk, ""):
        response = client.post(
            _admin_url(Tier, "add/"),
            {"tenant": tenant, "name": "sneaky", "tier_models-TOTAL_FORMS": "0", "tier_models-INITIAL_FORMS": "0"},
        )
        assert response.status_code == 200 and not Tier.objects.filter(name="sneaky").exists()

    own = Skill.objects.create(tenant=world.tenant, slug="acme-review", name="r", system_prompt="p", enabled=False)
    shared = Skill.objects.create(tenant=None, slug="global-review", name="g", system_prompt="p", enabled=False)
    foreign = Skill.objects.create(
        tenant=world.foreign_tenant, slug="globex-review", name="x", system_prompt="p", enabled=False
    )
    client.post(_admin_url(Skill), {"action": "enable", "_selected_action": [own.pk, shared.pk, foreign.pk]})
    enabled = dict(Skill.objects.values_list("slug", "enabled"))
    assert enabled["acme-review"] and not enabled["global-review"] and not enabled["globex-review"]
    assert _client(world.users["tenant_admin"]).get(_admin_url(Skill)).context["cl"].list_editable == ()


def test_config_sections_are_for_the_platform_only(world):
    assert _client(world.users["tenant_admin"]).get("/admin/routing/configsection/").status_code == 403
    assert _client(world.users["root"]).get("/admin/routing/configsection/").status_code == 200

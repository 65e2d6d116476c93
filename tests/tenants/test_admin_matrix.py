"""The permission matrix through the Django admin: who reaches which page, sees which rows, changes what.

Only staff reach the admin: owners, members and outsiders are sent to the login
page. A tenant admin sees and changes only acme's rows; another tenant's id is
"not found" on every page (change, delete, history) and in every choice list
(foreign keys, autocomplete, list filters, actions).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from billing.models import Budget
from tenants import admin_group
from tenants.models import ApiKey, Membership, Team, Tenant
from tests.tenants.world import World, build_world, colleague

pytestmark = pytest.mark.django_db

MODELS = {  # URL name in the admin → world attribute of an acme row and a globex row
    "tenants/tenant": ("tenant", "foreign_tenant"),
    "tenants/team": ("team", "foreign"),
    "tenants/apikey": ("keys.member", "keys.foreign"),
    "billing/budget": ("budgets.team", "budgets.foreign"),
    "billing/usageevent": ("usage.own", "usage.foreign"),
}


def _get(world: World, path: str) -> object:
    obj: object = world
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


@pytest.fixture
def world() -> World:
    return build_world()


def admin_client(world: World, role: str) -> Client:
    client = Client()
    client.force_login(world.users[role])
    return client


@pytest.mark.parametrize("role", ["owner", "member", "outsider"])
def test_non_staff_never_reach_the_admin(world, role):
    client = admin_client(world, role)
    for url in ("/admin/", "/admin/tenants/apikey/", f"/admin/tenants/team/{world.team.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


@pytest.mark.parametrize("model", MODELS)
def test_changelists_show_only_own_tenant_rows(world, model):
    own, foreign = (_get(world, path) for path in MODELS[model])
    for role, expected in (("root", {own.pk, foreign.pk}), ("tenant_admin", {own.pk})):
        response = admin_client(world, role).get(f"/admin/{model}/")
        assert response.status_code == 200, (role, model)
        shown = {obj.pk for obj in response.context["cl"].result_list}
        assert expected <= shown and (role == "root" or foreign.pk not in shown), (role, model, shown)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("page", ["change", "delete", "history"])
def test_foreign_ids_are_not_found(world, model, page):
    own, foreign = (_get(world, path) for path in MODELS[model])
    client = admin_client(world, "tenant_admin")
    response = client.get(f"/admin/{model}/{foreign.pk}/{page}/")
    own_page = client.get(f"/admin/{model}/{own.pk}/{page}/")
    if page == "delete" and model in ("tenants/tenant", "tenants/apikey", "billing/usageevent"):
        # Nothing of this kind may be deleted by a tenant admin: the same 403 for own and foreign ids.
        assert response.status_code == own_page.status_code == 403, model
    else:
        assert response.status_code == 302 and response["Location"] == "/admin/", (model, page)
        assert own_page.status_code == 200, (model, page)
    assert admin_client(world, "root").get(f"/admin/{model}/{foreign.pk}/{page}/").status_code == 200


@pytest.mark.parametrize(
    ("model", "status", "root_status"),
    [
        ("tenants/tenant", 403, 200),
        ("tenants/team", 200, 200),
        ("tenants/membership", 200, 200),
        ("tenants/apikey", 200, 200),
        ("billing/budget", 200, 200),
        ("billing/usageevent", 403, 403),  # usage is written by the gateway only, for everyone
        ("providers/provider", 403, 200),
        ("providers/model", 403, 200),  # models are readable (names and prices), never editable
        ("auth/user", 403, 200),
    ],
)
def test_tenant_admin_add_pages(world, model, status, root_status):
    assert admin_client(world, "tenant_admin").get(f"/admin/{model}/add/").status_code == status
    assert admin_client(world, "root").get(f"/admin/{model}/add/").status_code == root_status


def test_providers_are_hidden_from_tenant_admins_and_models_read_only(world):
    client = admin_client(world, "tenant_admin")
    assert client.get("/admin/providers/provider/").status_code == 403
    assert client.get("/admin/providers/model/").status_code == 200
    index = client.get("/admin/").content.decode()
    assert "/admin/providers/provider/" not in index and "/admin/tenants/apikey/" in index


def test_foreign_key_choices_are_scoped(world):
    client = admin_client(world, "tenant_admin")
    form = client.get("/admin/tenants/team/add/").context["adminform"].form
    assert set(form.fields["tenant"].queryset) == {world.tenant}
    budget_form = client.get("/admin/billing/budget/add/").context["adminform"].form
    assert set(budget_form.fields["team"].queryset) == {world.team, world.sibling}
    assert world.keys["foreign"] not in set(budget_form.fields["api_key"].queryset)
    # Guessing a foreign id in a POST fails validation like a missing one.
    response = client.post("/admin/tenants/apikey/add/", {"team": world.foreign.pk, "name": "sneaky"})
    assert response.status_code == 200 and "team" in response.context["adminform"].form.errors
    assert not ApiKey.objects.filter(name="sneaky").exists()
    response = client.post("/admin/tenants/team/add/", {"tenant": world.foreign_tenant.pk, "slug": "x", "name": "x"})
    assert response.status_code == 200 and not Team.objects.filter(slug="x").exists()


def test_autocomplete_and_list_filters_are_scoped(world):
    client = admin_client(world, "tenant_admin")
    url = "/admin/autocomplete/?app_label=tenants&model_name=apikey&field_name=team&term="
    results = {row["text"] for row in client.get(url).json()["results"]}
    assert results == {str(world.team), str(world.sibling)}
    budget_tenants = "/admin/autocomplete/?app_label=billing&model_name=budget&field_name=tenant&term="
    assert {row["text"] for row in client.get(budget_tenants).json()["results"]} == {str(world.tenant)}
    page = client.get("/admin/tenants/apikey/").content.decode()
    assert "globex" not in page and "acme" in page


def test_actions_run_on_scoped_rows_only(world):
    client = admin_client(world, "tenant_admin")
    selected = [world.keys["member"].pk, world.keys["foreign"].pk]
    client.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": selected})
    assert ApiKey.objects.get(pk=world.keys["member"].pk).revoked_at is not None
    assert ApiKey.objects.get(pk=world.keys["foreign"].pk).revoked_at is None
    # Suspending is the platform's decision: the action is not offered to tenant admins.
    client.post("/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [world.tenant.pk]})
    assert Tenant.objects.get(pk=world.tenant.pk).status == Tenant.Status.ACTIVE
    admin_client(world, "root").post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [world.foreign_tenant.pk]}
    )
    assert Tenant.objects.get(pk=world.foreign_tenant.pk).status == Tenant.Status.SUSPENDED


def test_tenant_admin_edits_own_rows_and_cannot_touch_foreign_ones(world):
    client = admin_client(world, "tenant_admin")
    response = client.post(
        f"/admin/billing/budget/{world.budgets['team'].pk}/change/",
        {"team": world.team.pk, "amount_usd": "60", "period": "monthly", "action": "block"},
    )
    assert response.status_code == 302, response.content
    assert Budget.objects.get(pk=world.budgets["team"].pk).amount_usd == Decimal("60")
    client.post(
        f"/admin/billing/budget/{world.budgets['foreign'].pk}/change/",
        {"team": world.foreign.pk, "amount_usd": "1", "period": "monthly", "action": "block"},
    )
    assert Budget.objects.get(pk=world.budgets["foreign"].pk).amount_usd == Decimal("70")
    # Tenant admins change their tenant's name, never its slug or status.
    client.post(
        f"/admin/tenants/tenant/{world.tenant.pk}/change/",
        {"name": "Acme Corp", "slug": "hijack", "status": "suspended", "timezone": "UTC", **_empty_inlines()},
    )
    tenant = Tenant.objects.get(pk=world.tenant.pk)
    assert (tenant.name, tenant.slug, tenant.status) == ("Acme Corp", "acme", "active")


def _empty_inlines() -> dict[str, str]:
    data = {}
    for prefix in ("teams", "roles", "budgets"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


def test_tenant_admin_adds_members_by_username(world):
    client = admin_client(world, "tenant_admin")
    name = colleague(world)
    response = client.post("/admin/tenants/membership/add/", {"team": world.team.pk, "user": name, "role": "member"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Membership.objects.filter(team=world.team, user__username=name).exists()
    # Another tenant's account, an account in no tenant and no account at all: one and the same answer.
    errors = {
        str(
            client.post("/admin/tenants/membership/add/", {"team": world.team.pk, "user": other, "role": "member"})
            .context["adminform"]
            .form.errors["user"]
        )
        for other in ("globex-owner", "outsider", "nobody-at-all")
    }
    assert len(errors) == 1 and "No one in this tenant" in errors.pop()
    page = client.get("/admin/tenants/membership/add/").content.decode()
    assert "globex-owner" not in page  # no list of every account on the platform


def test_staff_without_a_tenant_role_sees_nothing(world):
    user = get_user_model().objects.create_user("drifter", is_staff=True)
    admin_group.enroll(user)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/tenants/apikey/").status_code == 403
    # Refused outright, not "does not exist" (a redirect): the id tells this user nothing either way.
    assert client.get(f"/admin/tenants/apikey/{world.keys['member'].pk}/change/").status_code == 403
    assert client.get("/admin/tenants/apikey/999999/change/").status_code == 403


def test_admin_changes_are_in_the_readable_history(world):
    client = admin_client(world, "tenant_admin")
    client.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [world.keys["member"].pk]})
    history = client.get(f"/admin/tenants/apikey/{world.keys['member'].pk}/history/").content.decode()
    assert "tenant_admin" in history and "[admin action] Revoked the key." in history


def test_the_group_holds_only_scoped_admin_permissions(world):
    group = admin_group.ensure_tenant_admin_group()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"view_apikey", "add_apikey", "change_apikey", "view_usageevent", "change_budget"} <= codenames
    refused = {"delete_apikey", "add_tenant", "delete_tenant", "view_provider", "change_model", "view_user"}
    assert not codenames & refused
    assert "view_model" in codenames
    assert "change_usageevent" not in codenames and "add_tenantrole" not in codenames

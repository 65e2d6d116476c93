"""Admin polish: every list reads well in English and the lists an admin edits explain their fields."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client

# Models an admin edits by hand: each editable field says what it does (or is self-evident).
SELF_EVIDENT = {"tenant", "team", "api_key", "slug", "description", "model", "updated_at", "created_at", "tier"}
EXPLAINED = ["routing.Tier", "routing.Skill", "routing.RoutingPolicy", "routing.GuardrailPolicy", "billing.Budget"]


def test_no_admin_list_has_an_english_plural_mistake():
    wrong = [
        str(model._meta.verbose_name_plural)
        for model in admin.site._registry
        if re.search(r"([^aeiou]ys|ss|shs|chs)$", str(model._meta.verbose_name_plural))
    ]
    assert wrong == []


@pytest.mark.parametrize("label", EXPLAINED)
def test_every_field_an_admin_edits_has_a_help_text(label):
    from django.apps import apps

    model = apps.get_model(label)
    missing = [
        f.name
        for f in model._meta.get_fields()
        if getattr(f, "editable", False) and not f.auto_created and f.name not in SELF_EVIDENT and not f.help_text
    ]
    assert missing == [], f"{label}: fields without help_text: {missing}"


@pytest.mark.django_db
def test_the_admin_index_says_guardrail_policies():
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.create_user("root", is_superuser=True, is_staff=True))
    html = client.get("/admin/").content.decode()
    assert "Guardrail policies" in html
    assert "policys" not in html

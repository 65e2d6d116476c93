"""Portal writes go through the same audit trail as the admin and the API (the objects' admin history)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tenants.models import ApiKey, Membership, Team, TenantRole
from tests.factories import make_key, make_team

pytestmark = pytest.mark.django_db


def entries(obj: object) -> list[tuple[int, str, str]]:
    rows = LogEntry.objects.filter(object_id=str(obj.pk), content_type__model=obj._meta.model_name).order_by("pk")
    return [(e.action_flag, e.user.get_username(), e.change_message) for e in rows]


def test_key_and_member_changes_in_the_portal_are_audited():
    users = get_user_model().objects
    owner, newcomer = users.create_user("aud-owner"), users.create_user("aud-new")
    team = make_team("aud", "web")
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    # A person of the tenant (only they can be added by name), in another of its teams.
    Membership.objects.create(team=make_team("aud", "ops"), user=newcomer, role=Membership.Role.MEMBER)
    client = Client()
    client.force_login(owner)

    created = client.post(reverse("portal:key_create", args=[team.pk]), {"name": "laptop"})
    key = ApiKey.objects.get(name="laptop")
    rotated = client.post(reverse("portal:key_rotate", args=[key.pk]), {"grace": "0"})
    secrets = [created.context["secret"], rotated.context["secret"]]
    new_key = ApiKey.objects.exclude(pk=key.pk).get(team=team, name="laptop")
    client.post(reverse("portal:key_revoke", args=[new_key.pk]))

    client.post(reverse("portal:member_list", args=[team.pk]), {"user": "aud-new", "role": "member"})
    membership = Membership.objects.get(team=team, user=newcomer)
    client.post(reverse("portal:member_role", args=[membership.pk]), {"role": "owner"})
    client.post(reverse("portal:member_remove", args=[membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()

    assert entries(key)[0][:2] == (ADDITION, "aud-owner") and entries(key)[1][0] == CHANGE
    assert "[portal] Rotated" in entries(key)[1][2]
    assert [flag for flag, _, _ in entries(new_key)] == [ADDITION, CHANGE]
    assert entries(new_key)[1][2] == "[portal] Revoked the key."
    assert [flag for flag, _, _ in entries(membership)] == [ADDITION, CHANGE, DELETION]
    assert all(message.startswith("[portal]") for _, _, message in entries(membership))
    # No secret in any message (the prefix, shown everywhere, is not one).
    assert not any(LogEntry.objects.filter(change_message__contains=secret).exists() for secret in secrets)


def test_a_refused_removal_leaves_no_entry():
    owner = get_user_model().objects.create_user("solo-owner")
    team = make_team("aud2", "web")
    membership = Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    client = Client()
    client.force_login(owner)
    client.post(reverse("portal:member_remove", args=[membership.pk]))  # the last owner cannot leave
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert entries(membership) == []


def test_a_team_started_in_the_portal_is_audited():
    admin = get_user_model().objects.create_user("aud-admin")
    tenant = make_key()[0].team.tenant
    TenantRole.objects.create(tenant=tenant, user=admin, role=TenantRole.Role.ADMIN)
    client = Client()
    client.force_login(admin)
    client.post(reverse("portal:team_create"), {"team_name": "Research", "tenant": tenant.pk})
    team = Team.objects.get(tenant=tenant, name="Research")
    assert entries(team) == [(ADDITION, "aud-admin", "[portal] Created the team.")]

"""Policies: a tenant's own row wins, otherwise the global default applies."""

from __future__ import annotations

import pytest

from gateway_platform.config.snapshot import load_snapshot
from routing.models import GuardrailPolicy, RoutingPolicy
from routing.policies import guardrail_policy, routing_policy
from tests.factories import make_team

pytestmark = pytest.mark.django_db


def test_tenant_policies_override_the_global_ones():
    RoutingPolicy.objects.create(tenant=None, cascade_enabled=False, code_mode=True)
    GuardrailPolicy.objects.create(tenant=None, mode="annotate", commands=["rm"])
    own = make_team("own").tenant
    other = make_team("other").tenant
    RoutingPolicy.objects.create(tenant=own, cascade_enabled=True, code_mode=False)
    GuardrailPolicy.objects.create(tenant=own, mode="block", commands=["rm", "sudo"])
    snapshot = load_snapshot(1)
    assert routing_policy(snapshot, own.pk).cascade_enabled is True
    assert routing_policy(snapshot, own.pk).code_mode is False
    assert routing_policy(snapshot, other.pk).cascade_enabled is False
    assert routing_policy(snapshot, None).code_mode is True
    assert guardrail_policy(snapshot, own.pk).commands == ("rm", "sudo")
    assert guardrail_policy(snapshot, other.pk).mode == "annotate"


def test_without_rows_the_built_in_defaults_apply():
    snapshot = load_snapshot(1)
    assert routing_policy(snapshot, 1).trim_context is True
    assert guardrail_policy(snapshot, 1).mode == "allow"

"""Schemathesis against ``/api/schema/``: generated requests never get a 500 and every answer matches the schema.

Runs in-process against the Django WSGI application on the test database, as a
superuser with a personal token, with a small number of examples per operation
so the whole run stays within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from caching.models import CachePolicy
from routing.models import GuardrailPolicy, ModelAlias, RoutingPolicy, Skill
from tenants.models import Membership
from tenants.tokens import personal_token_create
from tests.factories import make_budget, make_key, make_model, make_provider, make_team, make_tier

MAX_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def wsgi_app(db: None) -> Iterator[WSGIHandler]:
    """The real WSGI application on the test transaction.

    Django closes "old" connections when a request starts and ends; in-process
    that would close the test's own connection, so (like Django's test client)
    the handlers are detached while the app serves requests.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@dataclass(frozen=True)
class Seed:
    token: str
    ids: dict[str, int]  # resource (first path segment after /api/) → an existing row's id


@pytest.fixture
def seed(db: None) -> Seed:
    root = get_user_model().objects.create_superuser("schemathesis", email="", password=None)
    team = make_team("acme", "web")
    key, _ = make_key(team, created_by=root)
    membership = Membership.objects.create(team=team, user=root, role=Membership.Role.OWNER)
    issued = personal_token_create(user=root, name="schemathesis")
    # A second token for the {id} operations: revoking it must not log the run itself out.
    other_token = personal_token_create(user=root, name="target").token
    budget = make_budget("10", team=team)
    ids = {
        "keys": key.pk,
        "members": membership.pk,
        "teams": team.pk,
        "tenants": team.tenant_id,
        "budgets": budget.pk,
        "tokens": other_token.pk,
    }
    # The configuration API (routing/api.py): one row of each kind.
    model = make_model(make_provider("https://upstream.example/v1", name="st-provider"), name="st-model")
    ids |= {
        "providers": model.provider_id,
        "models": model.pk,
        "tiers": make_tier("st_tier", [model]).pk,
        "skills": Skill.objects.create(slug="st-skill", name="S", system_prompt="p").pk,
        "aliases": ModelAlias.objects.create(pattern="st-*", target="st_tier").pk,
        "routing-policies": RoutingPolicy.objects.get_or_create(tenant=None)[0].pk,
        "guardrail-policies": GuardrailPolicy.objects.create(tenant=team.tenant).pk,
        "cache-policies": CachePolicy.objects.create(tenant=team.tenant).pk,
    }
    return Seed(token=issued.secret, ids=ids)


@pytest.mark.django_db
def test_api_conforms_to_its_schema(wsgi_app: WSGIHandler, seed: Seed) -> None:
    # One loop over the operations rather than schemathesis' pytest integration, which does not
    # support pytest 9 yet; every operation runs, and all failures are reported together.
    # Operations on one object run twice: with generated ids (mostly 404s) and with a real row's id.
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    headers = {"Authorization": f"Bearer {seed.token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    with_ids = {op.path.split("/")[2] for op in operations if "{id}" in op.path}
    assert with_ids <= set(seed.ids), f"seed a real row for {sorted(with_ids - set(seed.ids))}"

    for operation in operations:
        resource = operation.path.split("/")[2]
        variants: list[dict[str, int] | None] = [None]
        if "{id}" in operation.path and resource in seed.ids:
            variants.append({"id": seed.ids[resource]})
        for path_parameters in variants:

            @given(case=operation.as_strategy(path_parameters=path_parameters))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Exception as exc:  # collect, then fail once with every operation's problem
                failures.append(f"{operation.label} {path_parameters or ''}: {exc}")
    assert not failures, "\n\n".join(failures)

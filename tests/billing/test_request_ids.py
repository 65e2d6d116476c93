"""The gateway's own request id is the billing key; the client's X-Request-Id is kept beside it, never a key."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from serving.consumers.base import client_request_id
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model_name(mock_upstream_url: str) -> str:
    name = f"rid-{uuid.uuid4().hex[:8]}"
    make_model(make_provider(f"{mock_upstream_url}/v1", name=f"p-{name}"), name=name)
    return name


def chat(gateway_url: str, secret: str, model: str, request_id: str | None = None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    body = {"model": model, "messages": [{"role": "user", "content": "bill me"}]}
    return httpx2.post(f"{gateway_url}/v1/chat/completions", headers=headers, json=body, timeout=30)


def test_a_constant_client_request_id_is_billed_every_time(gateway_url, model_name, drained_events):
    _, secret = make_key()
    constant = f"always-the-same-{uuid.uuid4().hex}"
    answers = [chat(gateway_url, secret, model_name, constant) for _ in range(3)]
    assert all(a.status_code == 200 for a in answers)
    ids = {a.headers["x-request-id"] for a in answers}
    assert len(ids) == 3 and constant not in ids
    assert all(a.headers["x-client-request-id"] == constant for a in answers)
    events = drained_events(3, client_request_id=constant)
    assert len(events) == 3 and {e.request_id for e in events} == ids
    assert all(e.cost_usd > 0 for e in events)


def test_another_tenant_cannot_suppress_a_record_by_sending_its_id(gateway_url, model_name, drained_events):
    victim_key, victim = make_key()
    _, attacker = make_key()
    victim_answer = chat(gateway_url, victim, model_name)
    victim_id = victim_answer.headers["x-request-id"]
    attack = chat(gateway_url, attacker, model_name, victim_id)
    assert attack.headers["x-request-id"] != victim_id
    [victim_event] = drained_events(1, request_id=victim_id)
    assert victim_event.api_key_id == victim_key.pk
    [attacker_event] = drained_events(1, client_request_id=victim_id)
    assert attacker_event.api_key_id != victim_key.pk


def test_the_admin_finds_an_event_by_the_client_request_id(gateway_url, model_name, drained_events):
    _, secret = make_key()
    mine = f"ticket-4711-{uuid.uuid4().hex[:6]}"
    answer = chat(gateway_url, secret, model_name, mine)
    drained_events(1, client_request_id=mine)
    admin = get_user_model().objects.create_superuser("rid-root", "r@example.com", "pw")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/billing/usageevent/", {"q": mine})
    assert [e.request_id for e in page.context["cl"].result_list] == [answer.headers["x-request-id"]]


def test_a_client_request_id_is_made_safe_to_store_and_echo():
    assert client_request_id({b"x-request-id": b"abc\x00\r\ndef\x7f"}) == "abcdef"
    assert client_request_id({b"x-request-id": b"x" * 500}) == "x" * 128
    assert client_request_id({}) == ""

"""Every bad input gets its exact status and OpenAI's error shape, never a 500."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from django.utils import timezone

from tenants.models import Tenant
from tenants.services import api_key_revoke
from tests.conftest import free_port
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def route(mock_upstream_url: str) -> None:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai", read_timeout=1.0, total_timeout=2.0)
    model = make_model(provider, name="mock-small")
    make_model(provider, name="mock-other")
    make_tier("simple_ops", [model])
    make_model(make_provider(f"http://127.0.0.1:{free_port()}/v1", name="nowhere"), name="mock-down")


@pytest.fixture
def secret(route: None) -> str:
    return make_key()[1]


def post(gateway_url: str, secret: str | None, body: object = None, *, content: bytes | None = None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    if content is None:
        return httpx2.post(f"{gateway_url}/v1/chat/completions", json=body, headers=headers, timeout=10)
    return httpx2.post(f"{gateway_url}/v1/chat/completions", content=content, headers=headers, timeout=10)


def assert_error(response: httpx2.Response, status: int, *, type_: str | None = None, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    if type_:
        assert error["type"] == type_
    if code:
        assert error["code"] == code
    assert response.headers["x-request-id"]
    return error


def test_it_refuses_a_missing_key(gateway_url, route):
    assert_error(post(gateway_url, None, HELLO), 401, type_="authentication_error", code="invalid_api_key")


def test_it_refuses_an_unknown_key(gateway_url, route):
    error = assert_error(post(gateway_url, "gw-not-a-real-key-000000000000", HELLO), 401, code="invalid_api_key")
    assert "gw-not-a-real-key" not in error["message"]  # the secret is never echoed in full


def test_it_refuses_a_revoked_key(gateway_url, route):
    key, secret = make_key()
    api_key_revoke(api_key=key)
    assert_error(post(gateway_url, secret, HELLO), 403, type_="permission_error", code="key_revoked")


def test_it_refuses_an_expired_key(gateway_url, route):
    _, secret = make_key(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(post(gateway_url, secret, HELLO), 403, code="key_expired")


def test_it_refuses_a_suspended_tenant(gateway_url, route):
    team = make_team()
    _, secret = make_key(team)
    team.tenant.status = Tenant.Status.SUSPENDED
    team.tenant.save()
    assert_error(post(gateway_url, secret, HELLO), 403, code="tenant_suspended")


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'"a string"', None),
        (b'{"model": "mock-small"}', "messages"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": 42, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "mock-small", "messages": "hi"}', "messages"),
        (b'{"model": "mock-small", "messages": []}', "messages"),
        (b'{"model": "mock-small", "messages": [42]}', "messages[0]"),
        (b'{"model": "mock-small", "messages": [{"role": "wizard", "content": "hi"}]}', "messages[0].role"),
        (b'{"model": "mock-small", "messages": [{"role": "user", "content": 7}]}', "messages[0].content"),
        (b'{"model": "mock-small", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', "stream"),
        (b'{"model": "mock-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "10"}', "max_tokens"),
        (b'{"model": "mock-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}', "max_tokens"),
        (
            b'{"model": "mock-small", "messages": [{"role": "user", "content": "hi"}], "temperature": true}',
            "temperature",
        ),
        (b'{"model": "mock-small", "messages": [{"role": "user", "content": "hi"}], "tools": {}}', "tools"),
    ],
)
def test_it_rejects_malformed_bodies(gateway_url, secret, content, param):
    error = assert_error(post(gateway_url, secret, content=content), 400, type_="invalid_request_error")
    assert error["param"] == param


def test_it_rejects_an_unknown_model(gateway_url, secret):
    error = assert_error(post(gateway_url, secret, {**HELLO, "model": "gpt-99"}), 400, code="model_not_found")
    assert error["param"] == "model"


def test_it_rejects_a_model_the_key_may_not_use(gateway_url, route):
    _, secret = make_key(allowed_models=["simple_ops"])
    assert_error(post(gateway_url, secret, {**HELLO, "model": "mock-other"}), 400, code="model_not_allowed")
    assert post(gateway_url, secret, {**HELLO, "model": "simple_ops"}).status_code == 200


def test_it_rejects_a_body_over_the_size_limit(gateway_url, secret):
    huge = {**HELLO, "messages": [{"role": "user", "content": "x" * 2_000_000}]}
    assert_error(post(gateway_url, secret, huge), 413, code="request_too_large")


def test_it_rejects_other_methods(gateway_url, secret):
    response = httpx2.get(f"{gateway_url}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"})
    assert_error(response, 405)


def test_unknown_v1_paths_are_openai_shaped_404s(gateway_url, secret):
    assert_error(httpx2.post(f"{gateway_url}/v1/nope", json={}), 404, code="unknown_url")


def test_an_upstream_500_is_a_502(gateway_url, secret, drained_events):
    response = post(gateway_url, secret, {**HELLO, "messages": [{"role": "user", "content": "[[mock: status=500]]"}]})
    assert_error(response, 502, type_="api_error", code="upstream_error")
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.status_code == 502 and event.error_code == "upstream_error"
    # One retry of the same deployment (GATEWAY_RETRIES_PER_DEPLOYMENT=1), then the error.
    hop = {"provider": "mockai", "model": "mock-small", "status": 502, "error": "upstream_error"}
    assert [{k: a[k] for k in hop} for a in event.attempts] == [hop, hop]


def test_an_upstream_timeout_is_a_504(gateway_url, secret):
    response = post(gateway_url, secret, {**HELLO, "messages": [{"role": "user", "content": "[[mock: delay=3]]"}]})
    assert_error(response, 504, code="upstream_timeout")


def test_a_refused_connection_is_a_502(gateway_url, secret):
    assert_error(post(gateway_url, secret, {**HELLO, "model": "mock-down"}), 502, code="upstream_unreachable")


def test_an_upstream_client_error_passes_through(gateway_url, secret):
    response = post(gateway_url, secret, {**HELLO, "messages": [{"role": "user", "content": "[[mock: status=422]]"}]})
    assert_error(response, 422)


def test_errors_mid_stream_end_the_stream_with_an_error_event(gateway_url, secret):
    body = {**HELLO, "stream": True, "messages": [{"role": "user", "content": "bye [[mock: drop_after=2 words=5]]"}]}
    with httpx2.stream(
        "POST", f"{gateway_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
    ) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    # The first chunk always arrives; the second may be lost with the reset connection.
    assert 2 <= len(events) <= 3
    assert '"content"' in events[0]
    assert '"error"' in events[-1] and "upstream_disconnected" in events[-1]
    assert "[DONE]" not in "".join(events)

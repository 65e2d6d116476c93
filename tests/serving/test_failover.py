"""Failover and circuit breakers against the mock upstream's fault modes."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest

from gateway_platform.redis_clients import sync_client
from providers import circuit
from tests.conftest import free_port, start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai", read_timeout=1.0, total_timeout=3.0)
    primary = make_model(provider, name="primary", upstream_model="primary-1")
    backup = make_model(provider, name="backup", upstream_model="backup-1")
    make_tier("code_gen", [primary, backup])
    dead = make_model(make_provider(f"http://127.0.0.1:{free_port()}/v1", name="dead"), name="dead")
    make_tier("dead_first", [dead, backup])
    return make_key()[1]


def ask(gateway_url: str, secret: str, text: str, *, model: str = "code_gen", stream: bool = False):
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
    return httpx2.post(
        f"{gateway_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )


BEFORE_FIRST_BYTE = ["status=500", "status=503", "status=429 retry_after=0", "delay=3", "drop_after=0"]


@pytest.mark.parametrize(
    ("fault", "stream"),
    [(fault, stream) for fault in BEFORE_FIRST_BYTE for stream in (False, True)]
    # A non-streamed answer dropped half way never reached the client either.
    + [("drop_after=2", False)],
)
def test_a_failing_primary_falls_back_to_the_next_deployment(gateway_url, secret, drained_events, fault, stream):
    response = ask(gateway_url, secret, f"hi [[mock: {fault} model=primary-1]]", stream=stream)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-model"] == "backup"
    assert response.headers["x-gateway-fallback"] == "2"  # primary tried twice (one retry), then backup
    if stream:
        assert response.text.rstrip().endswith("data: [DONE]")
        assert "upstream" not in response.text  # no error event: the client saw one clean stream
    else:
        assert response.json()["choices"][0]["message"]["content"].startswith("Mock reply to: hi")
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert [a["model"] for a in event.attempts] == ["primary", "primary", "backup"]
    assert event.model == "backup"


def test_a_refused_connection_falls_back(gateway_url, secret):
    response = ask(gateway_url, secret, "hello", model="dead_first")
    assert response.status_code == 200
    assert response.headers["x-gateway-model"] == "backup"


def test_an_upstream_retry_after_within_the_cap_is_waited_for(gateway_url, secret, drained_events):
    started = time.monotonic()
    response = ask(gateway_url, secret, "wait [[mock: status=429 retry_after=2 model=primary-1]]")
    assert response.status_code == 200 and response.headers["x-gateway-model"] == "backup"
    assert time.monotonic() - started >= 2.0  # the retry waited Retry-After (a sleep is never shorter)
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert [a["model"] for a in event.attempts] == ["primary", "primary", "backup"]


def test_an_upstream_retry_after_over_the_cap_moves_on_at_once(gateway_url, secret, drained_events):
    # GATEWAY_RETRY_MAX_WAIT_SECONDS is 5 s: a provider asking for 600 s is not retried.
    response = ask(gateway_url, secret, "busy [[mock: status=429 retry_after=600 model=primary-1]]")
    assert response.status_code == 200 and response.headers["x-gateway-model"] == "backup"
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert [a["model"] for a in event.attempts] == ["primary", "backup"]


def test_client_errors_are_not_retried(gateway_url, secret, drained_events):
    response = ask(gateway_url, secret, "bad [[mock: status=400]]")
    assert response.status_code == 400
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert len(event.attempts) == 1


def test_when_every_deployment_fails_the_client_gets_the_error(gateway_url, secret):
    response = ask(gateway_url, secret, "doomed [[mock: status=500]]")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


def test_a_drop_after_bytes_were_streamed_is_never_retried(gateway_url, secret, drained_events):
    response = ask(gateway_url, secret, "partial [[mock: drop_after=3 words=5 model=primary-1]]", stream=True)
    assert response.status_code == 200
    assert response.headers["x-gateway-model"] == "primary"
    data = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert "upstream_disconnected" in data[-1] and "[DONE]" not in response.text
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert [a["model"] for a in event.attempts] == ["primary"]


def test_the_circuit_opens_after_n_failures_and_open_circuits_are_skipped(gateway_url, secret, drained_events):
    # Five failures open the primary's circuit (two per request: the try and its retry).
    for _ in range(3):
        assert ask(gateway_url, secret, "x [[mock: status=500 model=primary-1]]").status_code == 200
    assert circuit.state_of("primary") == circuit.OPEN
    response = ask(gateway_url, secret, "healthy again, but the circuit is open")
    assert response.headers["x-gateway-model"] == "backup"
    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.attempts[0]["error"] == "circuit_open" and event.attempts[0]["circuit"] == "open"


def test_all_circuits_open_gives_503_with_retry_after(gateway_url, secret):
    for name in ("primary", "backup"):
        for _ in range(5):
            circuit.record_failure_sync(name)
    response = ask(gateway_url, secret, "anyone?")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_healthy_deployment"
    assert 1 <= int(response.headers["retry-after"]) <= 30


def end_open_window(deployment: str) -> None:
    """Move the breaker's opening back by the reset timeout (Redis clock): its open window is over.

    The window itself is 60 s so that nothing on a busy machine can outlast it by accident.
    """
    seconds, _micro = sync_client().time()
    sync_client().hset(f"cb:{deployment}", "opened_at", seconds - RESET_SECONDS - 1)


RESET_SECONDS = 60


def test_half_open_lets_one_probe_through_and_success_closes(mock_upstream_url, secret):
    # A second gateway process with its own reset timeout shares Redis with the first.
    proc, url = start_gateway(GATEWAY_CIRCUIT_RESET_SECONDS=str(RESET_SECONDS), GATEWAY_CIRCUIT_FAILURES="2")
    try:
        assert ask(url, secret, "trip [[mock: status=500 model=primary-1]]").status_code == 200
        assert circuit.state_of("primary") == circuit.OPEN
        assert ask(url, secret, "skipped").headers["x-gateway-model"] == "backup"
        end_open_window("primary")
        # After the reset timeout one probe goes to the primary; it fails and re-opens the circuit.
        assert ask(url, secret, "probe fails [[mock: status=500 model=primary-1]]").status_code == 200
        assert circuit.state_of("primary") == circuit.OPEN
        assert ask(url, secret, "skipped again").headers["x-gateway-model"] == "backup"
        end_open_window("primary")
        response = ask(url, secret, "probe succeeds")
        assert response.headers["x-gateway-model"] == "primary"
        assert circuit.state_of("primary") == circuit.CLOSED
    finally:
        stop_process(proc)


def test_two_gateway_processes_agree_on_circuit_state(gateway_url, secret):
    proc, other_url = start_gateway()
    try:
        for _ in range(3):  # trip it through the first process
            ask(gateway_url, secret, "x [[mock: status=500 model=primary-1]]")
        state = sync_client().hget("cb:primary", "state")
        assert state == b"open"
        # The second process skips the open primary without trying it.
        client = openai.OpenAI(base_url=f"{other_url}/v1", api_key=secret, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="code_gen", messages=[{"role": "user", "content": "second process"}]
        )
        assert raw.headers["x-gateway-model"] == "backup"
        assert raw.headers["x-gateway-fallback"] == "1"
    finally:
        stop_process(proc)

"""A gateway process killed (SIGKILL) right after answering: the usage event still arrives exactly once.

The usage record is queued in Redis before the answer's last bytes are sent,
so a client that has a whole answer implies a queued record. The gateway here
holds each finished answer for a few seconds (``held_asgi``) and the test kills
it the moment the client has the answer — with the record written after the
answer, that loses it every time.
"""

from __future__ import annotations

import os
import signal
import sys

import httpx2
import pytest

from tests.conftest import free_port, server_env, start_process, stop_process, wait_for_http
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def held_gateway(django_db_setup: None):
    port = free_port()
    args = [sys.executable, "-m", "daphne", "-p", str(port), "tests.billing.held_asgi:application"]
    proc = start_process(args, server_env(TEST_FINAL_SEND_HOLD_SECONDS="5"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/live", proc=proc)
        yield proc, url
    finally:
        if proc.poll() is None:
            stop_process(proc)


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    return make_key()[1]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_it_keeps_the_event_of_an_answer_whose_process_is_killed(held_gateway, secret, drained_events, stream):
    proc, url = held_gateway
    body = {"model": "mock-small", "messages": [{"role": "user", "content": "kill me"}], "stream": stream}
    with httpx2.stream(
        "POST", f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"}, json=body, timeout=10
    ) as response:
        content = response.read()
        os.kill(proc.pid, signal.SIGKILL)  # the client has the whole answer; the process dies now
    proc.wait(timeout=10)
    assert response.status_code == 200
    assert (b"[DONE]" in content) if stream else content.startswith(b"{")
    request_id = response.headers["x-request-id"]

    events = drained_events(1, timeout=5, request_id=request_id)
    assert len(events) == 1
    assert events[0].completion_tokens > 0 and events[0].status_code == 200

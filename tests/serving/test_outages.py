"""PostgreSQL or Redis down: `/health` and `/v1/` answer 503 in the API's error shape, never 500.

Real gateway processes whose DATABASE_URL or REDIS_URL points at a server that is not
there (a closed port, a missing socket): the connection itself fails.
"""

from __future__ import annotations

import httpx2
import pytest

from tests.conftest import free_port, start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    return make_key()[1]


def chat(url: str, secret: str) -> httpx2.Response:
    body = {"model": "mock-small", "messages": [{"role": "user", "content": "anyone home?"}]}
    return httpx2.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=60
    )


@pytest.mark.parametrize(
    ("down", "env"),
    [
        # A short pool timeout: each check otherwise waits 10 s for a connection that never comes.
        (
            "database",
            {"DATABASE_URL": f"postgresql://gateway:x@127.0.0.1:{free_port()}/gateway", "DATABASE_POOL_TIMEOUT": "2"},
        ),
        ("redis", {"REDIS_URL": "unix:///nonexistent/redis.sock"}),
    ],
)
def test_v1_and_health_answer_503_when_a_backing_store_is_down(secret, down, env):
    proc, url = start_gateway(**env)
    try:
        health = httpx2.get(f"{url}/health", timeout=60)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable"
        assert body["checks"][down].startswith("error: ")
        response = chat(url, secret)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "code", "param"}
        assert response.headers.get("retry-after")
    finally:
        stop_process(proc)

"""Smoke test: the app runs under both supported ASGI servers."""

from __future__ import annotations

import httpx2
import pytest

from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_the_gateway_serves_under(server, mock_upstream_url):
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    _, secret = make_key()
    proc, url = start_gateway(server)
    try:
        assert httpx2.get(f"{url}/live").json() == {"status": "ok"}
        health = httpx2.get(f"{url}/health")
        assert health.status_code == 200
        checks = health.json()["checks"]
        assert checks["database"] == "ok" and checks["redis"] == "ok"
        response = httpx2.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "mock-small", "messages": [{"role": "user", "content": f"hello {server}"}]},
        )
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == f"Mock reply to: hello {server}"
        assert httpx2.get(f"{url}/admin/login/").status_code == 200
    finally:
        stop_process(proc)

"""``/live`` (liveness) and ``/health`` (readiness): JSON shape and statuses."""

from __future__ import annotations

import pytest
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway_platform import health
from gateway_platform.health import CELERY_HEARTBEAT_KEY, write_celery_heartbeat
from gateway_platform.redis_clients import sync_client
from providers.models import ProviderHealth
from tests.factories import make_provider

pytestmark = pytest.mark.django_db


OPERATOR = {"HTTP_AUTHORIZATION": "Bearer health-token"}  # what a monitoring system sends (the metrics token)


@pytest.fixture(autouse=True)
def _no_heartbeat(settings) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "METRICS_TOKEN": "health-token", "METRICS_ALLOWED_NETWORKS": []}
    sync_client().delete(CELERY_HEARTBEAT_KEY)


def test_live_checks_nothing_else():
    response = Client().get("/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_health_without_a_celery_heartbeat_is_degraded_but_ready():
    response = Client(**OPERATOR).get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "redis": "ok", "celery": "stale"},
        "providers": {},
        "redis_durability": [],  # the project's Redis runs with AOF and noeviction
        "usage_spool_records": 0,
    }


def test_health_with_a_heartbeat_reports_celery_ok():
    write_celery_heartbeat(30)
    response = Client(**OPERATOR).get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"]["celery"] == "ok"


def test_health_lists_enabled_providers_with_their_latest_probe():
    up = make_provider("http://127.0.0.1:1/v1", name="hp-up")
    down = make_provider("http://127.0.0.1:1/v1", name="hp-down")
    make_provider("http://127.0.0.1:1/v1", name="hp-new")
    make_provider("http://127.0.0.1:1/v1", name="hp-off", enabled=False)
    ProviderHealth.objects.create(provider=up, status=ProviderHealth.Status.HEALTHY, latency_ms=12)
    ProviderHealth.objects.create(provider=down, status=ProviderHealth.Status.DOWN, last_error="unreachable")
    response = Client(**OPERATOR).get("/health")
    assert response.status_code == 200  # a down provider does not make the gateway unready
    assert response.json()["providers"] == {"hp-down": "down", "hp-new": "unknown", "hp-up": "healthy"}


def test_health_is_503_when_redis_fails(monkeypatch):
    class BrokenRedis:
        def ping(self) -> None:
            raise RedisConnectionError("no redis")

        def exists(self, *keys: str) -> int:
            raise RedisConnectionError("no redis")

    monkeypatch.setattr(health, "sync_client", lambda: BrokenRedis())
    response = Client(**OPERATOR).get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "error: ConnectionError", "celery": "unknown"},
        "providers": {},
        "redis_durability": [],
        "usage_spool_records": 0,
    }


# PostgreSQL down (a real connection that fails): tests/serving/test_outages.py.


def test_provider_names_need_the_metrics_token():
    make_provider("http://127.0.0.1:9/v1", name="secret-vendor")
    anonymous = Client(REMOTE_ADDR="203.0.113.9").get("/health")
    assert anonymous.status_code == 200 and "providers" not in anonymous.json()
    assert "secret-vendor" not in anonymous.content.decode()
    wrong = Client(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope").get("/health")
    assert "providers" not in wrong.json()
    assert "secret-vendor" in Client(**OPERATOR).get("/health").json()["providers"]

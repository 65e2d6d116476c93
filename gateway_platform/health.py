"""Liveness and readiness endpoints for load balancers and orchestrators.

``/live`` only says the process answers. ``/health`` (readiness) checks what the
gateway needs to serve: PostgreSQL and Redis (either failing makes it 503); it
also reports, without failing, whether a Celery worker is alive (a heartbeat
key the worker's beat-scheduled tasks refresh) and each enabled provider's
status from its latest health probe. Nothing is probed inside the request.
"""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse

from gateway_platform.redis_clients import sync_client

CELERY_HEARTBEAT_KEY = "gateway:celery:heartbeat"
OK = "ok"


def write_celery_heartbeat(ttl_seconds: float) -> None:
    """Mark a Celery worker alive for ``ttl_seconds`` (called from periodic tasks)."""
    sync_client().set(CELERY_HEARTBEAT_KEY, str(time.time()), ex=max(1, round(ttl_seconds)))


def liveness(request: HttpRequest) -> JsonResponse:
    """The process answers: nothing else is checked."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"
    return OK


def _check_redis() -> str:
    try:
        sync_client().ping()
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"
    return OK


def _check_celery() -> str:
    """``ok`` while a worker's heartbeat is fresh, ``stale`` otherwise (``unknown`` without Redis)."""
    try:
        alive = sync_client().exists(CELERY_HEARTBEAT_KEY)
    except Exception:
        return "unknown"
    return OK if alive else "stale"


def _provider_statuses() -> dict[str, str]:
    """Enabled provider name → status of its latest probe (``unknown`` before the first)."""
    from providers.models import Provider, ProviderHealth

    try:
        rows = list(Provider.objects.filter(enabled=True).order_by("name").values_list("name", "health__status"))
    except Exception:
        return {}
    return {name: status or ProviderHealth.Status.UNKNOWN for name, status in rows}


def _spool_depth() -> int:
    from billing.usage import spool_depth

    return spool_depth()


def _redis_durability() -> list[str]:
    from gateway_platform.redis_durability import durability_problems

    try:
        return durability_problems(sync_client())
    except Exception as exc:
        return [f"error: {exc.__class__.__name__}"]


def readiness(request: HttpRequest) -> JsonResponse:
    """Ready when PostgreSQL and Redis answer; 503 otherwise.

    Body: ``{"status": "ok" | "degraded" | "unavailable", "checks": {"database",
    "redis", "celery"}}``, plus ``"providers": {name: status}`` for a caller that
    may read ``/metrics`` (the metrics token or an allowed network): provider
    names are the platform's business, not a load balancer's. A stale Celery
    worker makes the status ``degraded`` but keeps 200: the gateway still serves.
    """
    from gateway_platform.metrics_view import scrape_allowed

    checks = {"database": _check_database(), "redis": _check_redis(), "celery": _check_celery()}
    ready = checks["database"] == OK and checks["redis"] == OK
    status = "unavailable" if not ready else OK if checks["celery"] == OK else "degraded"
    body: dict[str, object] = {"status": status, "checks": checks}
    if scrape_allowed(request):
        body["providers"] = _provider_statuses() if checks["database"] == OK else {}
        body["redis_durability"] = _redis_durability() if checks["redis"] == OK else []
        body["usage_spool_records"] = _spool_depth()
    return JsonResponse(body, status=200 if ready else 503)

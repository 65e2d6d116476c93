"""``GET /metrics``: django-prometheus's exporter behind a token or an allow-list of networks."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import generate_latest

from gateway_platform import scrape_metrics


def _allowed(request: HttpRequest) -> bool:
    token = settings.GATEWAY["METRICS_TOKEN"]
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if sent and hmac.compare_digest(sent, token):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.GATEWAY["METRICS_ALLOWED_NETWORKS"])


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of every process on this host (multiprocess mode when configured)."""
    if not _allowed(request):
        return HttpResponse("Forbidden: send the metrics token or scrape from an allowed network.\n", status=403)
    response = ExportToDjangoView(request)
    # Families read from Redis at scrape time (usage drain lag, dead letters, budget burn): see scrape_metrics.
    response.content = response.content + generate_latest(scrape_metrics.REGISTRY)
    return response

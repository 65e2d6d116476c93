"""``GET /metrics``: django-prometheus's exporter behind a token or an allow-list of networks.

Every tenant's slug and spend is in there, so outside local mode the token is
required unless ``GATEWAY_METRICS_ALLOWED_NETWORKS`` says otherwise, and the
network check uses the client address (``X-Forwarded-For`` only from
``GATEWAY_TRUSTED_PROXIES``), never the address of a proxy in front.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import generate_latest

from gateway_platform import scrape_metrics
from gateway_platform.client_address import resolve_client_address


def scrape_allowed(request: HttpRequest) -> bool:
    """The metrics token was sent, or the client is in ``GATEWAY_METRICS_ALLOWED_NETWORKS``."""
    token = settings.GATEWAY["METRICS_TOKEN"]
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if sent and hmac.compare_digest(sent, token):
            return True
    client = resolve_client_address(request.META.get("REMOTE_ADDR", ""), request.headers.get("X-Forwarded-For"))
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    networks = settings.GATEWAY["METRICS_ALLOWED_NETWORKS"]
    return any(address.version == network.version and address in network for network in networks)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of every process on this host (multiprocess mode when configured)."""
    if not scrape_allowed(request):
        return HttpResponse("Forbidden: send the metrics token or scrape from an allowed network.\n", status=403)
    response = ExportToDjangoView(request)
    # Families read from Redis at scrape time (usage drain lag, dead letters, budget burn): see scrape_metrics.
    response.content = response.content + generate_latest(scrape_metrics.REGISTRY)
    return response

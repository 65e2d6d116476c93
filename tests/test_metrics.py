"""``/metrics``: gateway metrics, protected by network allow-list or token."""

from __future__ import annotations

import httpx2
import pytest
from django.test import Client

from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


def test_gateway_metrics_count_requests_tokens_and_cost(gateway_url, mock_upstream_url):
    model = make_model(make_provider(f"{mock_upstream_url}/v1", name="metricsai"), name="metered", input_cost="1")
    make_tier("metered_tier", [model])
    _, secret = make_key()
    response = httpx2.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "metered_tier", "messages": [{"role": "user", "content": "meter me"}]},
    )
    assert response.status_code == 200
    text = httpx2.get(f"{gateway_url}/metrics").text
    assert 'gateway_requests_total{model="metered",provider="metricsai",status="200",tier="metered_tier"} 1.0' in text
    assert 'gateway_tokens_total{direction="output",model="metered",provider="metricsai"} 5.0' in text
    assert 'gateway_cost_usd_total{model="metered",provider="metricsai",tenant="' in text
    assert 'gateway_tenant_tokens_total{direction="output",tenant="' in text
    assert "gateway_request_latency_seconds_bucket" in text
    assert 'gateway_upstream_latency_seconds_count{model="metered",provider="metricsai"} 1.0' in text
    assert "django_http_requests_total_by_method_total" in text  # django-prometheus is there too


def test_metrics_are_refused_outside_the_allowed_networks(settings):
    settings.GATEWAY = {**settings.GATEWAY, "METRICS_TOKEN": "scrape-token"}
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 403
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200

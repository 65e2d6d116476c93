"""``/metrics``: gateway metrics, protected by network allow-list or token."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time

import httpx2
import pytest
from django.test import Client

from tests.conftest import server_env
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
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    settings.GATEWAY = {**settings.GATEWAY, "METRICS_TOKEN": "scrape-token", "METRICS_ALLOWED_NETWORKS": loopback}
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 403
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200


def test_a_proxy_on_loopback_does_not_open_the_metrics(settings):
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    settings.GATEWAY = {**settings.GATEWAY, "METRICS_TOKEN": "", "METRICS_ALLOWED_NETWORKS": loopback}
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    # Not a trusted proxy: its forwarded address is ignored, the peer (loopback) is allowed.
    assert proxied.get("/metrics").status_code == 200
    settings.GATEWAY = {**settings.GATEWAY, "TRUSTED_PROXIES": loopback}
    # A trusted same-host proxy: the outsider it forwards is refused.
    assert proxied.get("/metrics").status_code == 403
    # And a client cannot pretend to be local through a trusted proxy by adding its own entry.
    spoofed = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.9")
    assert spoofed.get("/metrics").status_code == 403


@pytest.mark.parametrize(("local", "opened"), [("1", True), ("0", False)])
def test_outside_local_mode_the_token_is_required_by_default(local, opened):
    env = {k: v for k, v in server_env(GATEWAY_LOCAL=local, DJANGO_DEBUG="0").items()}
    env.pop("GATEWAY_METRICS_ALLOWED_NETWORKS")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(bool(settings.GATEWAY['METRICS_ALLOWED_NETWORKS']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "gateway_platform.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == str(opened)


def metric(gateway_url: str, series: str) -> float:
    """The value of one series on /metrics (0 when it is not exported yet)."""
    for line in httpx2.get(f"{gateway_url}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ask(gateway_url: str, secret: str, model: str, text: str) -> httpx2.Response:
    return httpx2.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def test_cache_hits_fallbacks_and_circuit_states_are_exported(gateway_url, mock_upstream_url):
    from caching.models import CachePolicy
    from providers import circuit

    provider = make_provider(f"{mock_upstream_url}/v1", name="metricsfb")
    primary = make_model(provider, name="fb-primary", upstream_model="fb-primary-1")
    make_tier("fb_tier", [primary, make_model(provider, name="fb-backup", upstream_model="fb-backup-1")])
    CachePolicy.objects.create(tenant=None)
    _, secret = make_key()
    # The session's gateway process counts other tests' traffic too: compare before and after.
    hits = 'gateway_cache_hits_total{kind="hit"}'
    hits_before = metric(gateway_url, hits)

    answer = ask(gateway_url, secret, "fb_tier", "fail over [[mock: status=500 model=fb-primary-1]]")
    assert answer.headers["x-gateway-model"] == "fb-backup"
    assert metric(gateway_url, 'gateway_fallbacks_total{tier="fb_tier"}') == 1.0

    for _ in range(10):
        circuit.record_failure_sync("fb-primary")
    assert ask(gateway_url, secret, "fb_tier", "skip the open one").headers["x-gateway-model"] == "fb-backup"
    assert metric(gateway_url, 'gateway_circuit_state{deployment="fb-primary"}') == 2.0  # open

    first = ask(gateway_url, secret, "fb-backup", "cache me please")
    assert first.headers["x-gateway-cache"] == "MISS"
    deadline = time.monotonic() + 10
    while (again := ask(gateway_url, secret, "fb-backup", "cache me please")).headers["x-gateway-cache"] != "HIT":
        assert time.monotonic() < deadline, "the answer was never stored in the cache"
        time.sleep(0.2)
    assert metric(gateway_url, hits) == hits_before + 1
    assert again.headers["x-gateway-cache"] == "HIT"

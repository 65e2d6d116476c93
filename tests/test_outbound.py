"""The outbound URL policy: webhooks (and other URLs people can set) never reach the gateway's own network."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from billing import alerts
from billing.models import AlertChannel, BudgetAlert
from gateway_platform import outbound
from tests.factories import make_budget, make_key
from tests.tenants.world import build_world

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


class Listener(http.server.BaseHTTPRequestHandler):
    hits: list[tuple[str, str]] = []  # (path, Host header)
    redirect_to = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Listener.hits.append((self.path, self.headers.get("Host", "")))
        if Listener.redirect_to:
            self.send_response(302)
            self.send_header("Location", Listener.redirect_to)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[int]:
    """A real HTTP listener on 127.0.0.1: what an attacker would like the worker to call."""
    Listener.hits, Listener.redirect_to = [], ""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def allow(settings, networks: list) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "OUTBOUND_ALLOWED_NETWORKS": networks}


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "fd00:ec2::254",
        "fe80::1",
    ],
)
def test_it_refuses_non_public_addresses(address):
    assert outbound.refusal_reason(ipaddress.ip_address(address)) is not None
    with pytest.raises(outbound.OutboundURLRefused):
        host = f"[{address}]" if ":" in address else address
        outbound.check_url(f"http://{host}/hook")


def test_it_allows_public_addresses_and_configured_networks(settings):
    assert outbound.refusal_reason(ipaddress.ip_address("93.184.216.34")) is None
    allow(settings, [ipaddress.ip_network("10.0.0.0/8")])
    assert outbound.refusal_reason(ipaddress.ip_address("10.1.2.3")) is None
    assert outbound.refusal_reason(ipaddress.ip_address("127.0.0.1")) is not None


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000/x", "ftp://example.com/x", "http://user:pw@example.com/x", "http:///x", "http://[::1"],
)
def test_it_refuses_names_of_local_hosts_and_odd_urls(url):
    with pytest.raises(outbound.OutboundURLRefused):
        outbound.check_url(url)


@pytest.mark.django_db
def test_a_webhook_onto_the_gateway_network_cannot_be_saved(settings, listener):
    tenant = make_key()[0].team.tenant
    for target in (f"http://127.0.0.1:{listener}/hook", "http://169.254.169.254/latest/meta-data/"):
        channel = AlertChannel(tenant=tenant, kind="webhook", target=target)
        with pytest.raises(ValidationError, match="address"):
            channel.full_clean()
    allow(settings, LOOPBACK)
    AlertChannel(tenant=tenant, kind="webhook", target=f"http://127.0.0.1:{listener}/hook").full_clean()


@pytest.mark.django_db
def test_a_tenant_admin_gets_a_form_error_for_a_metadata_webhook():
    world = build_world()
    client = Client()
    client.force_login(world.users["tenant_admin"])
    response = client.post(
        "/admin/billing/alertchannel/add/",
        {"tenant": world.tenant.pk, "kind": "webhook", "target": "http://169.254.169.254/", "enabled": "on"},
    )
    assert response.status_code == 200 and "target" in response.context["adminform"].form.errors
    assert not AlertChannel.objects.exists()


def _alert_and_channel(target: str) -> tuple[BudgetAlert, AlertChannel]:
    key, _ = make_key()
    budget = make_budget("1", tenant=key.team.tenant, thresholds=[50])
    # Stored without clean(): as if the URL passed when saved and resolves elsewhere now (DNS rebinding).
    channel = AlertChannel.objects.create(tenant=key.team.tenant, kind="webhook", target=target)
    alert = BudgetAlert.objects.create(
        budget=budget,
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        threshold=50,
        spent_usd=Decimal("0.5"),
        amount_usd=Decimal(1),
    )
    return alert, channel


@pytest.mark.django_db
def test_delivery_checks_again_and_never_connects_to_a_refused_address(settings, listener):
    alert, channel = _alert_and_channel(f"http://localhost:{listener}/hook")
    alerts.alert_deliver(alert=alert, channel=channel)  # refused, logged, not retried
    assert Listener.hits == []
    allow(settings, LOOPBACK)
    alerts.alert_deliver(alert=alert, channel=channel)
    # Connected to the checked address, with the URL's own host name in the request.
    assert Listener.hits == [("/hook", f"localhost:{listener}")]


@pytest.mark.django_db
def test_delivery_does_not_follow_redirects(settings, listener):
    allow(settings, LOOPBACK)
    Listener.redirect_to = f"http://127.0.0.1:{listener}/internal-admin"
    alert, channel = _alert_and_channel(f"http://127.0.0.1:{listener}/hook")
    alerts.alert_deliver(alert=alert, channel=channel)
    assert [path for path, _ in Listener.hits] == ["/hook"]

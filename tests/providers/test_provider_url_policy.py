"""Provider base URLs follow the outbound URL policy: no provider onto the gateway's own network.

Set through the management API, the admin or a config file, a base URL naming a
loopback, private, link-local (cloud metadata) or otherwise non-public address is
refused unless ``GATEWAY_PROVIDER_ALLOWED_NETWORKS`` lists it (loopback by default
only in local mode and DEBUG; the test suite allows loopback for its mock upstream
and empties the list here). A tenant's own provider is checked again at every
connection: a host name that resolves to loopback reaches no listener on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from gateway_platform.errors import GatewayError
from providers import http as upstream_http
from providers.adapters.base import ProviderConfig
from providers.models import Provider
from routing.config_file import ConfigError, config_import
from tests.tenants.world import build_world

FORBIDDEN = [
    "http://127.0.0.1:8787/v1",
    "http://[::1]:8787/v1",
    "http://169.254.169.254/latest",
    "http://10.1.2.3/v1",
    "http://192.168.0.10:11434",
    "http://localhost:8787/v1",
]


@pytest.fixture
def no_loopback(settings):
    """Production defaults: no provider allow-list."""
    gateway = dict(settings.GATEWAY)
    gateway["PROVIDER_ALLOWED_NETWORKS"] = []
    gateway["OUTBOUND_ALLOWED_NETWORKS"] = []
    settings.GATEWAY = gateway
    return gateway


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", FORBIDDEN)
def test_the_api_refuses_a_provider_on_the_gateways_network(no_loopback, url):
    world = build_world()
    for who, tenant in (("root", ""), ("tenant_admin", world.team.tenant.slug)):
        body = {"name": f"p-{who}", "kind": "openai", "base_url": url, "tenant": tenant}
        response = api(world.users[who]).post("/api/providers/", body, format="json")
        assert response.status_code == 400, (who, response.content)
        assert "GATEWAY_PROVIDER_ALLOWED_NETWORKS" in str(response.json()["base_url"])
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_an_allowed_network_and_a_public_or_unresolved_host_are_accepted(no_loopback):
    root = api(get_user_model().objects.create_superuser("root-p", password=None))
    public = {"name": "public", "kind": "openai", "base_url": "https://8.8.8.8/v1"}
    assert root.post("/api/providers/", public, format="json").status_code == 201
    later = {"name": "later", "kind": "openai", "base_url": "https://llm.not-yet-in-dns.example/v1"}
    assert root.post("/api/providers/", later, format="json").status_code == 201  # checked at connection
    no_loopback["PROVIDER_ALLOWED_NETWORKS"] = [ipaddress.ip_network("10.0.0.0/8")]
    onprem = {"name": "onprem", "kind": "openai", "base_url": "http://10.1.2.3/v1"}
    assert root.post("/api/providers/", onprem, format="json").status_code == 201
    changed = root.patch(
        f"/api/providers/{Provider.objects.get(name='onprem').pk}/",
        {"base_url": "http://169.254.169.254/v1"},
        format="json",
    )
    assert changed.status_code == 400 and "link-local" in str(changed.json()["base_url"])


@pytest.mark.django_db
def test_the_admin_refuses_it(no_loopback, client):
    client.force_login(get_user_model().objects.create_superuser("root-a", password=None))
    response = client.post(
        "/admin/providers/provider/add/",
        {"name": "meta", "kind": "openai", "base_url": "http://169.254.169.254/v1", "extra_headers": "{}"}
        | {"connect_timeout": 5, "read_timeout": 60, "total_timeout": 600, "max_connections": 100},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "GATEWAY_PROVIDER_ALLOWED_NETWORKS" in response.content.decode()
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_a_config_file_is_refused_naming_the_key(no_loopback):
    text = "providers:\n  - {name: internal, kind: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
    with pytest.raises(ConfigError, match=r"providers\[0\]\.base_url.*loopback"):
        config_import(text=text)
    assert not Provider.objects.exists()


def test_a_tenants_provider_reaches_no_listener_through_a_name_that_resolves_to_loopback(no_loopback):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    own = ProviderConfig(7, "tenant-own", "openai", f"http://localhost:{port}/v1", "k", 1.0, 1.0, 2.0, 2, tenant_id=3)

    async def call() -> None:
        try:
            await upstream_http.post_json(own, f"http://localhost:{port}/v1/chat/completions", {"model": "m"}, {})
        finally:
            await upstream_http.close_sessions()

    with pytest.raises(GatewayError) as refused:
        asyncio.run(call())
    assert refused.value.status == 502
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing connected
    listener.close()

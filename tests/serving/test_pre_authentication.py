"""Before a valid key is known: no usage rows, bounded caches, and a limit on wrong keys per address."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx2
import pytest
from django.utils import timezone

from billing.models import UsageEvent
from gateway_platform.client_address import resolve_client_address
from gateway_platform.config import snapshot as config_snapshot
from gateway_platform.config import version as config_version
from tenants.keys import hash_secret
from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def strict_gateway(gateway_url: str) -> Iterator[str]:
    """A gateway that blocks an address after 5 wrong keys a minute."""
    proc, url = start_gateway(GATEWAY_AUTH_FAILURE_LIMIT="5")
    yield url
    stop_process(proc)


def post(url: str, headers: dict[str, str], body: bytes | None = None) -> httpx2.Response:
    content = body if body is not None else b'{"model": "x", "messages": [{"role": "user", "content": "hi"}]}'
    return httpx2.post(f"{url}/v1/chat/completions", headers=headers, content=content, timeout=30)


def test_requests_without_a_valid_key_leave_no_usage_rows(gateway_url, mock_upstream_url, drained_events):
    make_model(make_provider(f"{mock_upstream_url}/v1", name=f"pa-{uuid.uuid4().hex[:6]}"), name="pa-model")
    _, secret = make_key()
    revoked_key, revoked = make_key()
    revoked_key.revoked_at = timezone.now()
    revoked_key.save()
    answers = [
        post(gateway_url, {}),  # no key
        post(gateway_url, {"Authorization": "Bearer sk-gw-not-a-real-key"}),
        post(gateway_url, {"Authorization": f"Bearer {revoked}"}),
        post(gateway_url, {"Authorization": f"Bearer {secret}"}, b"x" * (1048576 + 10)),  # 413 before auth
    ]
    assert [a.status_code for a in answers] == [401, 401, 403, 413]
    good = httpx2.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "pa-model", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert good.status_code == 200
    drained_events(1, request_id=good.headers["x-request-id"])  # drained up to the good one
    junk_ids = [a.headers["x-request-id"] for a in answers]
    assert not UsageEvent.objects.filter(request_id__in=junk_ids).exists()
    metrics = httpx2.get(f"{gateway_url}/metrics").text
    assert 'gateway_unauthenticated_requests_total{endpoint="chat.completions",status="401"}' in metrics
    assert 'gateway_unauthenticated_requests_total{endpoint="chat.completions",status="413"}' in metrics


def test_wrong_keys_from_one_address_are_limited(strict_gateway):
    _, secret = make_key()
    used = post(strict_gateway, {"Authorization": f"Bearer {secret}"})
    assert used.status_code == 400  # authenticated (unknown model): the key is cached now
    statuses = [post(strict_gateway, {"Authorization": f"Bearer wrong-{n}"}).status_code for n in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    blocked = post(strict_gateway, {"Authorization": "Bearer wrong-again"})
    assert blocked.json()["error"]["code"] == "too_many_failed_authentications"
    assert int(blocked.headers["retry-after"]) >= 1
    # A key this address already used is cached and keeps working; a new one waits out the minute.
    assert post(strict_gateway, {"Authorization": f"Bearer {secret}"}).status_code == 400
    _, fresh = make_key()
    assert post(strict_gateway, {"Authorization": f"Bearer {fresh}"}).status_code == 429


def test_unknown_keys_never_evict_valid_ones(settings):
    settings.GATEWAY = {**settings.GATEWAY, "UNKNOWN_KEY_CACHE_MAX": 50}
    key, secret = make_key()

    async def run() -> tuple[object, int]:
        cache = config_snapshot.ConfigCache()
        snapshot = await cache.snapshot()
        await cache.key(snapshot, hash_secret(secret))
        for n in range(500):
            await cache.key(snapshot, hash_secret(f"random-{n}"))
        return cache.cached_key(hash_secret(secret)), len(cache._unknown)

    cached, unknown = asyncio.run(run())
    assert cached is not None and cached.id == key.pk
    assert unknown == 50


def test_a_revocation_whose_version_bump_is_lost_takes_effect_within_the_bound(settings, monkeypatch):
    settings.GATEWAY = {**settings.GATEWAY, "KEY_CACHE_MAX_AGE_SECONDS": 0.5}
    key, secret = make_key()
    cache = config_snapshot.ConfigCache()

    async def lookup() -> bool:
        snapshot = await cache.snapshot()
        info = await cache.key(snapshot, hash_secret(secret))
        return info is not None and not info.revoked

    assert asyncio.run(lookup())

    class RedisDown:
        def incr(self, *args: object) -> None:
            raise ConnectionError("redis is down")

    monkeypatch.setattr(config_version, "sync_client", lambda: RedisDown())
    monkeypatch.setattr(config_version, "RETRY_DELAYS", (0.0, 0.0))
    version_before = asyncio.run(config_version.current())
    key.revoked_at = timezone.now()
    key.save()  # the on_commit bump fails on every retry
    assert asyncio.run(config_version.current()) == version_before
    time.sleep(0.6)  # the documented bound, not a measurement
    assert not asyncio.run(lookup())


def test_the_version_bump_is_retried(monkeypatch):
    calls: list[int] = []

    class Flaky:
        def incr(self, name: str) -> int:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionError("blip")
            return 1

    monkeypatch.setattr(config_version, "sync_client", lambda: Flaky())
    monkeypatch.setattr(config_version, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    assert config_version.bump() is True and len(calls) == 3


def test_forwarded_addresses_are_believed_only_from_trusted_proxies():
    import ipaddress

    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert resolve_client_address("203.0.113.9", "127.0.0.1", proxies) == "203.0.113.9"
    assert resolve_client_address("10.0.0.2", "198.51.100.7, 10.0.0.3", proxies) == "198.51.100.7"
    assert resolve_client_address("10.0.0.2", "127.0.0.1, 198.51.100.7", proxies) == "198.51.100.7"
    assert resolve_client_address("10.0.0.2", None, proxies) == "10.0.0.2"

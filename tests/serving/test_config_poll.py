"""Each gateway process polls the configuration version instead of reading it per request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import openai
import pytest
from django.utils import timezone

from gateway_platform.config import snapshot as config_snapshot
from gateway_platform.config.version import VERSION_KEY
from gateway_platform.redis_clients import sync_client
from tenants.keys import hash_secret
from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_tier
from tests.serving.redis_monitor import RedisMonitor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    make_tier("code_gen", [make_model(provider, name="cheap", upstream_model="cheap-1")])
    return make_key()[1]


@pytest.fixture
def slow_poll_gateway() -> Iterator[str]:
    proc, url = start_gateway(GATEWAY_CONFIG_POLL_SECONDS="120")
    yield url
    stop_process(proc)


def ask(url: str, secret: str) -> int:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)
    try:
        client.chat.completions.create(model="code_gen", messages=[{"role": "user", "content": "hi"}])
    except openai.APIStatusError as error:
        return error.status_code
    return 200


def test_requests_between_polls_do_not_read_the_version(slow_poll_gateway, secret):
    with RedisMonitor() as monitor:
        statuses = [ask(slow_poll_gateway, secret) for _ in range(12)]
    assert statuses == [200] * 12
    # The first request loads the snapshot; the next eleven use it.
    assert monitor.count(f'"GET" "{VERSION_KEY}"') == 1


def test_a_revocation_is_seen_within_the_poll_interval(secret):
    proc, url = start_gateway(GATEWAY_CONFIG_POLL_SECONDS="0.5")
    try:
        assert ask(url, secret) == 200
        from tenants.models import ApiKey

        ApiKey.objects.update(revoked_at=timezone.now())
        sync_client().incr(VERSION_KEY)  # what the post-commit signal does after an admin save
        deadline = time.monotonic() + 15
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(ask(url, secret))
            if statuses[-1] != 200:
                break
            time.sleep(0.1)
        assert statuses[-1] == 403
    finally:
        stop_process(proc)


def test_requests_arriving_together_share_one_version_read_and_one_key_load(monkeypatch):
    key, secret = make_key()
    loads: list[str] = []
    load_key = config_snapshot._key_loader
    assert load_key is not None

    def counted(key_hash: str) -> object:
        loads.append(key_hash)
        return load_key(key_hash)

    monkeypatch.setattr(config_snapshot, "_key_loader", counted)
    cache = config_snapshot.ConfigCache(poll_seconds=0)  # every request is due to read the version

    async def burst() -> list[object]:
        snapshots = await asyncio.gather(*(cache.snapshot() for _ in range(20)))
        assert len({id(snapshot) for snapshot in snapshots}) == 1
        return await asyncio.gather(*(cache.key(snapshots[0], hash_secret(secret)) for _ in range(20)))

    with RedisMonitor() as monitor:
        infos = asyncio.run(burst())
    assert monitor.count(f'"GET" "{VERSION_KEY}"') == 1
    assert loads == [hash_secret(secret)]
    assert {info.id for info in infos} == {key.pk}  # type: ignore[attr-defined]

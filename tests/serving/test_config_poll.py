"""Each gateway process polls the configuration version instead of reading it per request."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest
from django.utils import timezone

from gateway_platform.config.version import VERSION_KEY
from gateway_platform.redis_clients import sync_client
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

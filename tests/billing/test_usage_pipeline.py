"""The usage pipeline: Redis stream → PostgreSQL, exactly once, with a local spool."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from decimal import Decimal

import httpx2
import orjson
import pytest
from django.utils import timezone

from billing import usage
from billing.models import UsageEvent
from gateway_platform.redis_clients import sync_client
from tests.conftest import server_env, start_process, stop_process
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


def record(**fields: object) -> usage.UsageRecord:
    now = timezone.now()
    values: dict[str, object] = {
        "request_id": uuid.uuid4().hex,
        "endpoint": "chat.completions",
        "started_at": now,
        "finished_at": now,
        "status_code": 200,
        "cost_usd": Decimal("0.0012345"),
    }
    values.update(fields)
    return usage.UsageRecord(**values)  # type: ignore[arg-type]


def test_records_reach_the_database_once_even_when_delivered_twice():
    item = record(prompt_tokens=7)
    asyncio.run(usage.record(item))
    asyncio.run(usage.record(item))  # a duplicate delivery of the same request id
    usage.drain()
    event = UsageEvent.objects.get(request_id=item.request_id)
    assert event.prompt_tokens == 7 and event.cost_usd == Decimal("0.0012345")


def test_records_read_by_a_crashed_drainer_are_taken_over(monkeypatch):
    item = record()
    asyncio.run(usage.record(item))
    client = sync_client()
    usage._ensure_group(client)
    # A drainer reads the record and dies before writing or acknowledging it.
    client.xreadgroup(usage.GROUP, "crashed-drainer", {usage.STREAM: ">"}, count=1000)
    usage.drain()
    assert not UsageEvent.objects.filter(request_id=item.request_id).exists()
    monkeypatch.setattr(usage, "CLAIM_IDLE_MS", 0)
    usage.drain()
    assert UsageEvent.objects.filter(request_id=item.request_id).exists()


def test_records_are_spooled_when_redis_is_down_and_replayed(monkeypatch, settings, tmp_path):
    settings.GATEWAY = {**settings.GATEWAY, "USAGE_SPOOL_DIR": tmp_path}

    class DownRedis:
        async def xadd(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("redis is down")

    monkeypatch.setattr(usage, "async_client", lambda: DownRedis())
    item = record()
    asyncio.run(usage.record(item))
    [spooled] = list(tmp_path.glob("usage-*.jsonl"))
    assert orjson.loads(spooled.read_bytes())["request_id"] == item.request_id
    usage.drain()
    assert UsageEvent.objects.filter(request_id=item.request_id).exists()
    assert not list(tmp_path.iterdir())


def test_a_celery_worker_with_beat_drains_usage_without_help(gateway_url, mock_upstream_url, tmp_path):
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    _, secret = make_key()
    worker = start_process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "gateway_platform",
            "worker",
            "--beat",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        server_env(),
    )
    try:
        response = httpx2.post(
            f"{gateway_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "mock-small", "messages": [{"role": "user", "content": "count me"}]},
        )
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        deadline = time.monotonic() + 60
        while not UsageEvent.objects.filter(request_id=request_id).exists():
            assert time.monotonic() < deadline, "the worker never wrote the usage event"
            time.sleep(0.2)
    finally:
        stop_process(worker)


def test_records_are_not_acknowledged_while_the_database_is_unavailable(monkeypatch):
    from django.db import OperationalError

    item = record(prompt_tokens=3)
    asyncio.run(usage.record(item))
    real_write = usage.write_events

    def database_down(records: list[dict[str, object]]) -> int:
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(usage, "write_events", database_down)
    with pytest.raises(OperationalError):
        usage.drain()
    assert not UsageEvent.objects.filter(request_id=item.request_id).exists()
    pending = sync_client().xpending(usage.STREAM, usage.GROUP)
    assert pending["pending"] >= 1  # read, not acknowledged

    monkeypatch.setattr(usage, "write_events", real_write)
    monkeypatch.setattr(usage, "CLAIM_IDLE_MS", 0)
    usage.drain()
    usage.drain()
    assert UsageEvent.objects.filter(request_id=item.request_id).count() == 1


@pytest.fixture
def private_redis(tmp_path):
    """The product's embedded Redis under ``tmp_path``: its URL. Stopped however the test ends (it daemonizes,
    so a test stopped half-way would leave it running)."""
    from gateway_platform import embedded

    try:
        yield embedded.redis_url(tmp_path)
    finally:
        embedded.stop(tmp_path)


def test_queued_records_survive_a_redis_crash_with_append_only_persistence(monkeypatch, tmp_path, private_redis):
    """The product's own embedded Redis (same flags as `make run`) is killed and restarted.

    Removing append-only persistence from ``gateway_platform.embedded`` makes this fail:
    the restarted Redis comes back empty and the record is lost.
    """
    import redis as redis_lib

    from gateway_platform import embedded

    url = private_redis
    data_dir = tmp_path / "redis"
    private = redis_lib.Redis.from_url(url)
    monkeypatch.setattr(usage, "sync_client", lambda: private)
    item = record()
    private.xadd(usage.STREAM, {"e": item.to_json()})
    # Wait until the write has reached the data files (a crash loses only what the OS never got).
    needle = item.request_id.encode()
    deadline = time.monotonic() + 10
    while not any(needle in f.read_bytes() for f in data_dir.rglob("*") if f.is_file() and f.suffix != ".log"):
        assert time.monotonic() < deadline, "the record never reached Redis's data files"
        time.sleep(0.05)
    pid = int((data_dir / "redis.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)  # a crash, not a shutdown
    deadline = time.monotonic() + 10
    while embedded._redis_alive(data_dir / embedded.REDIS_SOCKET):
        assert time.monotonic() < deadline, "the killed Redis still answers"
        time.sleep(0.05)
    private.close()
    try:
        assert embedded.redis_url(tmp_path) == url  # restarted by the product's code, same flags
        private = redis_lib.Redis.from_url(url)
        usage.drain()
        assert UsageEvent.objects.filter(request_id=item.request_id).count() == 1
    finally:
        private.close()

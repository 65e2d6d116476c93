"""Shared fixtures: real servers (mock upstream, Daphne) over real connections.

The suite runs against real PostgreSQL (pgvector) and Redis — the embedded ones
the Makefile starts under var/test, or TEST_DATABASE_URL / TEST_REDIS_URL.
Integration tests talk HTTP to a gateway process that shares the test database.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import TransactionTestCase

from billing import usage
from billing.models import UsageEvent
from gateway_platform.config import version as config_version
from gateway_platform.redis_clients import sync_client

BASE_DIR = Path(__file__).resolve().parent.parent
# Gateway processes started by tests have this credential variable set (the mock accepts any key).
MOCK_PROVIDER_KEY_ENV = "MOCK_PROVIDER_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx2.get(url, timeout=1.0).status_code < 500:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


def test_database_url() -> str:
    """A URL for the test database, for server processes started by tests."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "postgres")
    password = quote(db.get("PASSWORD") or "")
    host = db.get("HOST") or ""
    port = db.get("PORT") or ""
    name = db["NAME"]
    if host.startswith("/"):
        return f"postgresql://{user}:{password}@/{name}?host={quote(host, safe='/')}"
    return f"postgresql://{user}:{password}@{host}:{port}/{name}"


def server_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        GATEWAY_MOCK_UPSTREAM_URL="",
        GATEWAY_KEEPALIVE_SECONDS="0.5",
        # Tests change configuration between requests and expect the very next one to see it;
        # tests/serving/test_config_poll.py covers the polling default.
        GATEWAY_CONFIG_POLL_SECONDS="0",
        GATEWAY_MAX_BODY_BYTES="1048576",
        GATEWAY_METRICS_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",  # tests scrape their gateways from loopback
        GATEWAY_PROVIDER_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",  # the mock upstream runs on loopback
        **{MOCK_PROVIDER_KEY_ENV: "test-key"},
        LOG_FORMAT="console",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def start_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=BASE_DIR, env=env)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def mock_upstream_url() -> Iterator[str]:
    """The bundled mock provider, a real process on a free port."""
    port = free_port()
    proc = start_process([sys.executable, "manage.py", "mock_upstream", "--port", str(port)], server_env())
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/_mock/health", proc=proc)
    yield url
    stop_process(proc)


def start_gateway(server: str = "daphne", **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    if server == "uvicorn":
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "gateway_platform.asgi:application",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
        ]
    else:
        args = [sys.executable, "-m", "daphne", "-p", str(port), "gateway_platform.asgi:application"]
    proc = start_process(args, server_env(**env))
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/live", proc=proc)
    return proc, url


@pytest.fixture(scope="session")
def gateway_url(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    """A Daphne process serving the gateway on the test database."""
    proc, url = start_gateway()
    yield url
    stop_process(proc)


@pytest.fixture
def drained_events() -> Callable[..., list[UsageEvent]]:
    """Drain the usage stream until ``count`` events for ``request_ids`` are stored."""

    def wait(count: int, timeout: float = 10.0, **filters: object) -> list[UsageEvent]:
        deadline = time.monotonic() + timeout
        try:
            while True:
                usage.drain()
                events = list(UsageEvent.objects.filter(**filters).order_by("started_at"))
                if len(events) >= count or time.monotonic() > deadline:
                    return events
                time.sleep(0.05)
        finally:
            # Called from worker threads too: hand their pooled connection back.
            connections.close_all()

    return wait


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """Close pooled connections before pytest-django drops the test database."""
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        for conn in connections.all():
            conn.close_pool()


def _is_deadlock(exc: BaseException | None) -> bool:
    while exc is not None:
        if "deadlock detected" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@pytest.fixture(scope="session", autouse=True)
def _flush_retried_after_a_deadlock() -> Iterator[None]:
    """A gateway under test may still be writing (a stored Responses answer) when the TRUNCATE that ends
    a transactional test comes, and PostgreSQL then aborts one of the two as a deadlock. When the flush
    is the one aborted, it runs again (the gateway's write has ended by then)."""
    original = TransactionTestCase._fixture_teardown

    def teardown(self: TransactionTestCase) -> None:
        for attempt in range(3):
            try:
                original(self)
                return
            except Exception as exc:
                if attempt == 2 or not _is_deadlock(exc):
                    raise
                time.sleep(0.2)

    TransactionTestCase._fixture_teardown = teardown  # type: ignore[method-assign]
    yield
    TransactionTestCase._fixture_teardown = original  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def _providers_on_loopback() -> None:
    """Providers in tests are the mock upstream on 127.0.0.1, as in local mode: loopback is allowed for them.

    ``tests/providers/test_provider_url_policy.py`` empties the list to test the refusal.
    """
    settings.GATEWAY["PROVIDER_ALLOWED_NETWORKS"] = [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]


@pytest.fixture(autouse=True)
def _fresh_circuits_and_limits() -> None:
    """Circuit, rate-limit and budget state is per deployment/key/budget in Redis: start each test clean.

    Gateways under test reload their configuration too: the TRUNCATE that ended the previous test
    sent no signal, so without the bump they would go on serving its tenants, keys and cache policy.
    """
    client = sync_client()
    for pattern in ("cb:*", "rl:*", "bud:*", "gwcache:*", "lb:*", "gw:affinity:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    config_version.bump()

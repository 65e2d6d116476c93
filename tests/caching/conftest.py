"""Fixtures for the response cache tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connections

from caching.embedders import local
from caching.models import CacheEntry, CachePolicy
from gateway_platform.redis_clients import sync_client


@pytest.fixture(scope="session")
def minilm() -> local.MiniLM:
    """The local embedding model, loaded once per test session."""
    model = local.shared()
    model.load()
    return model


@pytest.fixture(autouse=True)
def _empty_exact_layer(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tenant ids restart with every test database; exact-layer keys from an earlier run must not answer.

    Afterwards, waits for the gateway's background stores of the test's answers: an entry
    inserted while the test database is being flushed deadlocks the flush (TRUNCATE).
    """
    client = sync_client()
    keys = list(client.scan_iter(match="gwcache:*", count=1000))
    if keys:
        client.delete(*keys)
    yield
    if request.node.get_closest_marker("django_db") is not None:
        _wait_for_background_stores()


def _wait_for_background_stores(quiet: float = 0.5, timeout: float = 10.0) -> None:
    """Return once the number of cache entries has not changed for ``quiet`` seconds (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    try:
        if not CachePolicy.objects.exists():
            return  # the cache is off: nothing is stored in the background
        while time.monotonic() < deadline:
            count = CacheEntry.objects.count()
            if count != last:
                last, stable_since = count, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return
            time.sleep(0.1)
    finally:
        connections.close_all()


@pytest.fixture
def wait_for_entries() -> Callable[..., list[CacheEntry]]:
    """Poll until ``count`` entries match ``filters`` (stores run after the response)."""

    def wait(count: int, timeout: float = 10.0, **filters: object) -> list[CacheEntry]:
        deadline = time.monotonic() + timeout
        try:
            while True:
                entries = list(CacheEntry.objects.filter(**filters).order_by("created_at"))
                if len(entries) >= count or time.monotonic() > deadline:
                    return entries
                time.sleep(0.05)
        finally:
            connections.close_all()

    return wait

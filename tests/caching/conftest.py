"""Fixtures for the response cache tests."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.db import connections

from caching import entry_queue
from caching.embedders import local
from caching.models import CacheEntry


@pytest.fixture(scope="session")
def minilm() -> local.MiniLM:
    """The local embedding model, loaded once per test session."""
    model = local.shared()
    model.load()
    return model


@pytest.fixture
def wait_for_entries() -> Callable[..., list[CacheEntry]]:
    """Drain the entry queue until ``count`` entries match ``filters`` (stores run after the response)."""

    def wait(count: int, timeout: float = 10.0, **filters: object) -> list[CacheEntry]:
        deadline = time.monotonic() + timeout
        try:
            while True:
                entry_queue.drain()
                entries = list(CacheEntry.objects.filter(**filters).order_by("created_at"))
                if len(entries) >= count or time.monotonic() > deadline:
                    return entries
                time.sleep(0.05)
        finally:
            connections.close_all()

    return wait

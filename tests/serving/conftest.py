"""Fixtures for request-path tests: the response cache step shares the cache tests' fixtures."""

from tests.caching.conftest import minilm, wait_for_entries

__all__ = ["minilm", "wait_for_entries"]

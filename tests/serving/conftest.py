"""Fixtures for request-path tests: the response cache step shares the cache tests' fixtures."""

from tests.caching.conftest import _empty_exact_layer, minilm, wait_for_entries

__all__ = ["_empty_exact_layer", "minilm", "wait_for_entries"]

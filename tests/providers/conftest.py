"""Fixtures shared by the adapter tests: the bundled mock upstream in this test process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from providers import http
from providers.mock_upstream import start_mock


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mock_url() -> AsyncIterator[str]:
    """The mock upstream on a free loopback port, one per test module; pooled sessions closed after."""
    runner, port = await start_mock(port=0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await http.close_sessions()
        await runner.cleanup()

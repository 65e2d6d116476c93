"""Fixtures for billing tests: a second gateway process and concurrent bursts across both."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from tests.conftest import start_gateway, stop_process


@pytest.fixture(scope="session")
def second_gateway_url(gateway_url: str) -> Iterator[str]:
    """Another Daphne process on the same PostgreSQL and Redis (limits must hold across processes)."""
    proc, url = start_gateway()
    yield url
    stop_process(proc)


def auth(secret: str) -> dict[str, str]:
    """Request headers: the key, and no response cache (a cached answer costs nothing and skips limits' effects)."""
    return {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx2.Headers
    body: dict[str, Any]


def burst(urls: list[str], secret: str, body: dict[str, Any], count: int = 64) -> list[Answer]:
    """``count`` concurrent chat requests, spread round-robin over ``urls``."""

    async def run() -> list[Answer]:
        limits = httpx2.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx2.AsyncClient(limits=limits, timeout=30) as client:

            async def one(i: int) -> Answer:
                response = await client.post(
                    f"{urls[i % len(urls)]}/v1/chat/completions",
                    headers=auth(secret),
                    json=body,
                )
                return Answer(response.status_code, response.headers, response.json())

            return await asyncio.gather(*(one(i) for i in range(count)))

    return asyncio.run(run())

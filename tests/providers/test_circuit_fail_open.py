"""Breakers fail open: with Redis unreachable, routing goes on as if every circuit were closed."""

from __future__ import annotations

import asyncio

from providers import circuit


def test_every_breaker_call_fails_open_when_redis_is_unreachable(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/no-redis-here.sock"

    async def trip_and_ask() -> tuple[circuit.Permit, list[str]]:
        states = [await circuit.record_failure("flaky") for _ in range(10)]
        await circuit.record_success("flaky")
        return await circuit.acquire("flaky"), states

    permit, states = asyncio.run(trip_and_ask())
    assert permit.allowed and permit.state == circuit.CLOSED
    assert states == [circuit.CLOSED] * 10  # no failure could be counted, so nothing tripped
    assert circuit.state_of("flaky") == circuit.CLOSED

"""Shared Redis clients: one sync client per process; per event loop, one async client and one multiplexed link."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError

from gateway_platform.event_loops import per_event_loop
from gateway_platform.redis_link import Endpoint, Multiplexer

_async_scripts: dict[tuple[int, str], AsyncScript] = {}


@functools.cache
def sync_client() -> redis.Redis:
    """The process's synchronous Redis client (admin signals, tasks, commands)."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, health_check_interval=30)


@per_event_loop
def async_client() -> redis.asyncio.Redis:
    """The async Redis client bound to the running event loop."""
    return redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=5, max_connections=256)


def async_script(source: str) -> AsyncScript:
    """A Lua script registered on the loop's client (EVALSHA, reloaded on NOSCRIPT)."""
    client = async_client()
    key = (id(client), source)
    script = _async_scripts.get(key)
    if script is None:
        script = _async_scripts[key] = client.register_script(source)  # type: ignore[assignment]
    return script


@functools.cache
def sync_script(source: str) -> Script:
    """A Lua script registered on the process's synchronous client."""
    return sync_client().register_script(source)


@per_event_loop
def _multiplexer() -> Multiplexer | None:
    """The running loop's multiplexed link (``redis_link``); ``None`` where the URL needs redis-py (TLS options)."""
    try:
        return Multiplexer(Endpoint.from_url(settings.REDIS_URL))
    except ValueError:
        return None


@functools.cache
def script_sha(source: str) -> str:
    """The SHA1 Redis knows a Lua script by."""
    return hashlib.sha1(source.encode()).hexdigest()


async def _pipeline(commands: Sequence[Sequence[Any]]) -> list[Any]:
    """``commands`` through a redis-py pipeline (URLs the multiplexed link does not take)."""
    pipe = async_client().pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute(raise_on_error=False))


class Batch:
    """Redis commands and Lua scripts sent together in one round trip.

    The round trip goes over the event loop's multiplexed connection (``gateway_platform.redis_link``),
    shared with the other requests' batches. Scripts are sent as ``EVALSHA`` and loaded only when Redis
    answers ``NOSCRIPT`` (after a restart), then the batch is resent. Results come back in order, as
    Redis sent them (no redis-py response callbacks); a command's own error is returned in its place,
    a connection error raises (``redis.exceptions.ConnectionError`` / ``TimeoutError``).
    """

    def __init__(self) -> None:
        self._calls: list[tuple[str | None, tuple[Any, ...]]] = []

    def __len__(self) -> int:
        return len(self._calls)

    def script(self, source: str, keys: Sequence[Any], args: Sequence[Any]) -> int:
        """Queue a Lua script; returns the index of its result."""
        self._calls.append((source, (len(keys), *keys, *args)))
        return len(self._calls) - 1

    def command(self, *command: Any) -> int:
        """Queue a plain command (e.g. ``"HMGET", key, field``); returns the index of its result."""
        self._calls.append((None, command))
        return len(self._calls) - 1

    async def execute(self) -> list[Any]:
        multiplexer = _multiplexer()
        send = multiplexer.execute if multiplexer is not None else _pipeline
        commands = [call if source is None else ("EVALSHA", script_sha(source), *call) for source, call in self._calls]
        results = await send(commands)
        missing = {source for (source, _), result in zip(self._calls, results, strict=True) if _noscript(result)}
        if not missing:
            return results
        await send([("SCRIPT", "LOAD", source) for source in missing])
        return await send(commands)


def _noscript(result: object) -> bool:
    return isinstance(result, NoScriptError) or (isinstance(result, Exception) and "NOSCRIPT" in str(result))

"""Shared Redis clients: one sync client per process, one async client per event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError

_async_clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
_async_scripts: dict[tuple[int, str], AsyncScript] = {}


@functools.cache
def sync_client() -> redis.Redis:
    """The process's synchronous Redis client (admin signals, tasks, commands)."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, health_check_interval=30)


def async_client() -> redis.asyncio.Redis:
    """The async Redis client bound to the running event loop."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=5, max_connections=256)
        _async_clients[loop] = client
    return client


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


class Batch:
    """Redis commands and Lua scripts sent together in one round trip (a non-transactional pipeline).

    redis-py checks ``SCRIPT EXISTS`` before every pipeline that holds a ``Script``
    (a second round trip); a batch sends ``EVALSHA`` directly and loads the
    scripts only when Redis answers ``NOSCRIPT`` (after a restart), then resends.
    Results come back in order; a command's own error is returned in its place,
    a connection error raises.
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
        client = async_client()
        for attempt in range(2):
            pipe = client.pipeline(transaction=False)
            for source, call in self._calls:
                if source is None:
                    pipe.execute_command(*call)
                else:
                    pipe.execute_command("EVALSHA", async_script(source).sha, *call)
            results = await pipe.execute(raise_on_error=False)
            missing = {source for (source, _), result in zip(self._calls, results, strict=True) if _noscript(result)}
            if not missing or attempt:
                return list(results)
            for source in missing:
                await client.script_load(source)  # type: ignore[arg-type]
        raise AssertionError("unreachable")


def _noscript(result: object) -> bool:
    return isinstance(result, NoScriptError) or (isinstance(result, Exception) and "NOSCRIPT" in str(result))

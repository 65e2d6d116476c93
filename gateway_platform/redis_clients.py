"""Shared Redis clients: one sync client per process, one async client per event loop."""

from __future__ import annotations

import asyncio
import functools

import redis
import redis.asyncio
from django.conf import settings
from redis.commands.core import AsyncScript, Script

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

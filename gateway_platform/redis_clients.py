"""Shared Redis clients: one sync client per process, one async client per event loop."""

from __future__ import annotations

import asyncio
import functools

import redis
import redis.asyncio
from django.conf import settings

_async_clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}


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

"""Objects bound to an event loop (async clients, connections, caches): one per running loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_event_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """Wrap ``factory`` so that it runs once per event loop; the wrapper returns the running loop's result.

    Servers run one loop per process, so this is a per-process singleton there; a test or a command
    that runs several loops gets a fresh one in each (a client made in a closed loop cannot be reused).
    """
    made: dict[asyncio.AbstractEventLoop, T] = {}

    @functools.wraps(factory)
    def current() -> T:
        loop = asyncio.get_running_loop()
        try:
            return made[loop]
        except KeyError:
            value = made[loop] = factory()
            return value

    return current

"""Which commands Redis executed while a block ran (``MONITOR``), for tests of round trips."""

from __future__ import annotations

import threading
import time
from typing import Any

from gateway_platform.redis_clients import sync_client


class RedisMonitor:
    """Collects the command lines Redis reports through ``MONITOR`` inside a ``with`` block."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._connection: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RedisMonitor:
        self._connection = sync_client().connection_pool.get_connection()
        self._connection.send_command("MONITOR")
        assert self._connection.read_response() in (b"OK", "OK")
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        time.sleep(0.3)  # let the last lines arrive
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._connection.disconnect()

    def _watch(self) -> None:
        while not self._stop.is_set():
            if self._connection.can_read(timeout=0.1):
                line = self._connection.read_response()
                self.lines.append(line.decode(errors="replace") if isinstance(line, bytes) else str(line))

    def count(self, needle: str) -> int:
        """Lines that contain ``needle`` (e.g. ``'"XADD"'``)."""
        return sum(needle in line for line in self.lines)

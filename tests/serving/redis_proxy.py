"""A TCP proxy in front of the test Redis that records a gateway's round trips, for tests of the hot path.

``MONITOR`` (``tests/serving/redis_monitor.py``) says which commands ran, not how many
round trips carried them. A gateway pointed at this proxy (``proxy.url``) has every
burst it sends recorded: a round trip starts when the client sends after Redis
answered (or first on a connection), and holds every command sent before the next
answer. A pipeline is therefore one round trip, two awaited commands are two.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

Command = tuple[str, ...]


@dataclass
class _Pair:
    client: socket.socket
    server: socket.socket
    awaiting_reply: bool = False
    burst: bytearray | None = None


@dataclass
class RoundTrip:
    """The bytes of one round trip; ``commands`` parses them (RESP arrays of bulk strings)."""

    raw: bytearray = field(default_factory=bytearray)

    @property
    def commands(self) -> list[Command]:
        return parse_commands(bytes(self.raw))

    def names(self) -> list[str]:
        """Each command's name, upper-case (``EVALSHA``, ``GET``, ``XADD``, …)."""
        return [command[0].upper() for command in self.commands]


def parse_commands(data: bytes) -> list[Command]:
    """The commands in ``data`` (RESP arrays of bulk strings, as clients send them)."""
    commands: list[Command] = []
    pos = 0
    while pos < len(data):
        assert data[pos : pos + 1] == b"*", f"not a RESP array at {pos}: {data[pos : pos + 20]!r}"
        end = data.index(b"\r\n", pos)
        count, pos = int(data[pos + 1 : end]), end + 2
        args: list[str] = []
        for _ in range(count):
            end = data.index(b"\r\n", pos)
            length = int(data[pos + 1 : end])
            args.append(data[end + 2 : end + 2 + length].decode(errors="replace"))
            pos = end + 2 + length + 2
        commands.append(tuple(args))
    return commands


class RedisRoundTrips:
    """Forwards 127.0.0.1:<port> to the Redis of ``redis_url`` and records the round trips (``with`` block)."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        query = parse_qs(parts.query)
        if parts.scheme == "unix":
            self._target: tuple[int, object] = (socket.AF_UNIX, parts.path)
            db = query.get("db", ["0"])[0]
        else:
            self._target = (socket.AF_INET, (parts.hostname or "127.0.0.1", parts.port or 6379))
            db = parts.path.lstrip("/") or query.get("db", ["0"])[0]
        credentials = ""
        if parts.password:
            credentials = f"{parts.username or ''}:{parts.password}@"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://{credentials}127.0.0.1:{self._listener.getsockname()[1]}/{db}"
        self._lock = threading.Lock()
        self._trips: list[RoundTrip] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RedisRoundTrips:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def trips(self) -> list[RoundTrip]:
        """The round trips recorded so far (since the last ``clear``)."""
        with self._lock:
            return list(self._trips)

    def clear(self) -> None:
        with self._lock:
            self._trips = []

    def wait_for(self, done: Callable[[list[RoundTrip]], bool], timeout: float = 10.0) -> list[RoundTrip]:
        """Poll until ``done(trips)`` holds (background work sends after the answer), then return the trips."""
        deadline = time.monotonic() + timeout
        while not done(self.trips()) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # anything else sent meanwhile is recorded too
        return self.trips()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                if key.data is None:
                    self._accept(selector)
                    continue
                pair, from_client = key.data
                source = pair.client if from_client else pair.server
                try:
                    data = source.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    for sock in (pair.client, pair.server):
                        selector.unregister(sock)
                        sock.close()
                    continue
                if from_client:
                    with self._lock:
                        if not pair.awaiting_reply:
                            trip = RoundTrip()
                            self._trips.append(trip)
                            pair.burst = trip.raw
                            pair.awaiting_reply = True
                        assert pair.burst is not None
                        pair.burst.extend(data)
                    pair.server.sendall(data)
                else:
                    pair.awaiting_reply = False
                    pair.client.sendall(data)
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        client, _ = self._listener.accept()
        family, address = self._target
        server = socket.socket(family, socket.SOCK_STREAM)
        server.connect(address)  # type: ignore[arg-type]
        pair = _Pair(client, server)
        selector.register(client, selectors.EVENT_READ, (pair, True))
        selector.register(server, selectors.EVENT_READ, (pair, False))

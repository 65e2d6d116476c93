"""One multiplexed Redis connection per event loop, for the request path's batches (``redis_clients.Batch``).

redis-py's asyncio pipeline spends ~110 µs of CPU per round trip (pool checkout, retry wrapper,
per-command packing and parsing in Python), and every request sends two. Here every batch of an event
loop shares one connection: commands are packed by hiredis in C, the batches issued during one turn of
the loop leave in one write (auto-pipelining, as Node's ioredis does), and the replies, parsed by
hiredis, are handed back in order. Redis answers a connection's commands in the order it got them, so
the n-th batch sent is the n-th answered.

A connection that breaks (Redis restarted, killed, a protocol error) fails every batch still waiting
with ``redis.exceptions.ConnectionError``; one that stays silent for ``SOCKET_TIMEOUT_SECONDS`` with a
batch waiting is closed and its batches fail with ``redis.exceptions.TimeoutError`` (a late reply could
otherwise be matched to the wrong batch). The next batch connects again.

Replies are Redis' own (bytes, ints, lists, ``None``); an error reply is a ``ResponseError`` in its
place. No redis-py response callbacks are applied: ``SET`` answers ``b"OK"``, not ``True``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError, DataError, ResponseError, TimeoutError

SOCKET_TIMEOUT_SECONDS = 5.0  # as the redis-py clients of redis_clients.py
CONNECT_TIMEOUT_SECONDS = 5.0

Command = Sequence[Any]
SUPPORTED_URL_OPTIONS = frozenset({"host", "port", "path", "connection_class", "username", "password", "db"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect, from a ``redis://``, ``rediss://`` or ``unix://`` URL."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """``ValueError`` for a URL with options this link does not implement (``ssl_cert_reqs``, ...)."""
        options = parse_url(url)
        if unsupported := set(options) - SUPPORTED_URL_OPTIONS:
            raise ValueError(f"Redis URL options not supported by the multiplexed link: {sorted(unsupported)}")
        connection_class = options.get("connection_class")
        return cls(
            host=options.get("host") or "localhost",
            port=int(options.get("port") or 6379),
            path=options.get("path") if connection_class is UnixDomainSocketConnection else None,
            tls=connection_class is SSLConnection,
            username=options.get("username"),
            password=options.get("password"),
            db=int(options.get("db") or 0),
        )

    def handshake(self) -> list[Command]:
        """Commands a new connection sends first (``AUTH``, ``SELECT``)."""
        commands: list[Command] = []
        if self.password is not None:
            commands.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


def pack(commands: Sequence[Command]) -> bytes:
    """The RESP bytes of ``commands``; ``DataError`` for an argument Redis cannot take (as redis-py)."""
    try:
        return b"".join([hiredis.pack_command(tuple(command)) for command in commands])
    except TypeError as exc:
        raise DataError(f"Invalid input in Redis command {commands!r}: {exc}") from None


class _Waiting:
    __slots__ = ("expected", "future", "replies", "sent_at")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int, sent_at: float) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Any] = []
        self.sent_at = sent_at


class RedisLink(asyncio.Protocol):
    """One Redis connection shared by every batch of its event loop (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = SOCKET_TIMEOUT_SECONDS) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[_Waiting] = deque()
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.broken: Exception | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        try:
            while (reply := reader.gets()) is not False:
                head = waiting[0]
                head.replies.append(reply)
                if len(head.replies) == head.expected:
                    waiting.popleft()
                    if not head.future.done():  # its caller may have been cancelled meanwhile
                        head.future.set_result(head.replies)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self._break(ConnectionError(f"Redis sent what the protocol does not allow: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(self.broken or ConnectionError(f"Connection to Redis lost: {exc or 'closed by the server'}"))

    # sending

    def send(self, payload: bytes, expected: int) -> asyncio.Future[list[Any]]:
        """Queue ``payload`` (``expected`` commands) for this turn's write; the future gets their replies."""
        if self.broken is not None:
            raise self.broken
        loop = self._loop
        future = loop.create_future()
        if not self._out:
            loop.call_soon(self._flush)
        self._out.append(payload)
        self._waiting.append(_Waiting(future, expected, loop.time()))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check_silence)
        return future

    def close(self) -> None:
        self._break(ConnectionError("Connection to Redis closed"))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and self.broken is None:
            self._transport.write(b"".join(out))

    def _check_silence(self) -> None:
        self._watchdog = None
        if not self._waiting or self.broken is not None:
            return
        silent_for = self._loop.time() - self._waiting[0].sent_at
        if silent_for >= self._timeout:
            self._break(TimeoutError(f"Redis did not answer within {self._timeout:g} s"))
        else:
            self._watchdog = self._loop.call_later(self._timeout - silent_for, self._check_silence)

    def _break(self, exc: Exception) -> None:
        if self.broken is None:
            self.broken = exc
        if self._transport is not None:
            self._transport.abort()
        self._fail(self.broken)

    def _fail(self, exc: Exception) -> None:
        self.broken = self.broken or exc
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(exc)


class Multiplexer:
    """The batches of one event loop, over one ``RedisLink`` reconnected when it breaks."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = SOCKET_TIMEOUT_SECONDS) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        self._link: RedisLink | None = None
        self._connecting: asyncio.Future[RedisLink] | None = None

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` in one round trip; their replies in order (error replies in place)."""
        payload = pack(commands)
        link = self._link
        if link is None or link.broken is not None:
            link = await self._connected()
        return await link.send(payload, len(commands))

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    async def _connected(self) -> RedisLink:
        if self._connecting is None:  # one connection attempt at a time; the others wait for it
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> RedisLink:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                if endpoint.path is not None:
                    _, link = await loop.create_unix_connection(lambda: RedisLink(loop, self._timeout), endpoint.path)
                else:
                    tls = ssl.create_default_context() if endpoint.tls else None
                    _, link = await loop.create_connection(
                        lambda: RedisLink(loop, self._timeout), endpoint.host, endpoint.port, ssl=tls
                    )
        except OSError as exc:  # refused, unreachable, or the connect timed out (TimeoutError is an OSError)
            where = endpoint.path or f"{endpoint.host}:{endpoint.port}"
            raise ConnectionError(f"Error connecting to Redis at {where}: {exc!r}") from exc
        handshake = endpoint.handshake()
        if handshake:
            for reply in await link.send(pack(handshake), len(handshake)):
                if isinstance(reply, ResponseError):
                    link.close()
                    raise ConnectionError(f"Redis refused the connection's set-up: {reply}")
        self._link = link
        return link

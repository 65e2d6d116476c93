"""The pooled upstream HTTP client: one aiohttp session per provider and event loop.

aiohttp was chosen by measurement (see docs/benchmarks.md, ``bench/upstream_clients.py``):
at 50 concurrent requests against a local server it sustained several times
the throughput of httpx with a far lower p99. Everything that talks to a
provider goes through this module, so swapping the client stays local.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Iterator, Mapping
from dataclasses import dataclass

import aiohttp
import aiohttp.abc
import aiohttp.resolver
import orjson

from gateway_platform import outbound
from gateway_platform.errors import GatewayError
from providers import errors
from providers.adapters.base import JSON, ProviderConfig

_sessions: dict[tuple[int, str, str, int], aiohttp.ClientSession] = {}


class PolicyResolver(aiohttp.abc.AbstractResolver):
    """Resolves like aiohttp, keeping only addresses the outbound policy allows a provider to reach.

    Used for a tenant's own providers: a tenant admin's host name that resolves (or later
    rebinds) to the gateway's own network is refused at connection time, not only at save.
    """

    def __init__(self) -> None:
        self._inner = aiohttp.resolver.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        allowed = outbound.provider_networks()
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if outbound.refusal_reason(ipaddress.ip_address(r["host"]), allowed) is None]
        if not kept:
            raise OSError(f"{host} resolves only to addresses the outbound URL policy refuses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def _session(provider: ProviderConfig) -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    key = (id(loop), provider.name, provider.base_url, provider.max_connections)
    session = _sessions.get(key)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(
            limit=provider.max_connections,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
            # An IP literal was checked when the URL was saved; a host name is checked at each resolution.
            resolver=PolicyResolver() if provider.tenant_id is not None else None,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        _sessions[key] = session
    return session


async def close_sessions() -> None:
    """Close every session of the running loop (graceful shutdown, tests)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _sessions if k[0] == loop_id]:
        await _sessions.pop(key).close()


_timeouts: dict[tuple[float, float, float], aiohttp.ClientTimeout] = {}


def _timeout(provider: ProviderConfig) -> aiohttp.ClientTimeout:
    """The provider's timeouts; one (immutable) object per distinct setting, not one per request."""
    key = (provider.total_timeout, provider.connect_timeout, provider.read_timeout)
    timeout = _timeouts.get(key)
    if timeout is None:
        timeout = _timeouts[key] = aiohttp.ClientTimeout(total=key[0], sock_connect=key[1], sock_read=key[2])
    return timeout


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace")
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        if isinstance(data.get("message"), str):  # AWS: {"message": "..."}
            return str(data["message"])
    return body[:200].decode(errors="replace")


def raise_for_status(provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes) -> None:
    if status >= 400:
        raise errors.upstream_status(provider.name, status, _error_message(body), headers.get("Retry-After"))


@contextlib.contextmanager
def _mapped_errors(provider: ProviderConfig) -> Iterator[None]:
    try:
        yield
    except GatewayError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise errors.upstream_timeout(provider.name) from None
    except aiohttp.ClientConnectorError as exc:
        raise errors.upstream_unreachable(provider.name, str(exc.os_error or exc)) from None
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionResetError):
        raise errors.upstream_dropped(provider.name) from None
    except aiohttp.ClientError as exc:
        raise errors.upstream_unreachable(provider.name, exc.__class__.__name__) from None


def _with_extra(provider: ProviderConfig, headers: Mapping[str, str]) -> Mapping[str, str]:
    """The adapter's headers plus the provider's configured extra headers (which win)."""
    if not provider.extra_headers:
        return headers
    return {**headers, **dict(provider.extra_headers)}


async def post_json(provider: ProviderConfig, url: str, payload: JSON, headers: Mapping[str, str]) -> UpstreamResponse:
    """POST ``payload`` and return the whole answer; HTTP errors raise ``GatewayError``."""
    return await post_bytes(provider, url, orjson.dumps(payload), headers)


async def post_bytes(provider: ProviderConfig, url: str, data: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
    """POST an already encoded body (a signed request must send exactly the bytes it signed)."""
    with _mapped_errors(provider):
        async with _session(provider).post(
            url, data=data, headers=_with_extra(provider, headers), timeout=_timeout(provider)
        ) as resp:
            body = await resp.read()
            raise_for_status(provider, resp.status, resp.headers, body)
            return UpstreamResponse(resp.status, resp.headers, body)


async def get_json(
    provider: ProviderConfig, url: str, headers: Mapping[str, str], *, accept: Collection[int] = ()
) -> UpstreamResponse:
    """GET ``url`` (health probes, model lists); error statuses in ``accept`` are returned, not raised."""
    with _mapped_errors(provider):
        async with _session(provider).get(
            url, headers=_with_extra(provider, headers), timeout=_timeout(provider)
        ) as resp:
            body = await resp.read()
            if resp.status not in accept:
                raise_for_status(provider, resp.status, resp.headers, body)
            return UpstreamResponse(resp.status, resp.headers, body)


class SilenceWatch:
    """Reads a streamed answer, failing a read once the upstream was silent for ``read_timeout``.

    aiohttp's ``sock_read`` re-arms a timer on every network read (a cancelled handle and a new
    one: about 2 µs of each relayed event). Once the answer's head is in, that timer is switched
    off (``protocol.read_timeout = None``, as aiohttp does for WebSockets) and this one takes over:
    it wakes ``CHECKS`` times per read timeout and looks at how many bytes the answer has received
    (``StreamReader.total_bytes``). When none arrived for ``CHECKS`` wake-ups in a row while a
    read was waiting (a reader held up by a slow client is not a silent upstream), the waiting read
    fails as aiohttp's would (``SocketTimeoutError``): a silence is cut between 1 and 1 + 1/CHECKS
    read timeouts after the last byte. The head itself is still bounded by aiohttp's timer.
    """

    CHECKS = 4
    __slots__ = ("_content", "_handle", "_interval", "_loop", "_quiet", "_seen", "waiting")

    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float | None) -> None:
        self._content = response.content
        self._handle: asyncio.TimerHandle | None = None
        self._quiet = 0
        self._seen = 0
        self.waiting = False
        connection = response.connection  # None once the whole answer is in: nothing left to time
        self._interval = read_timeout / self.CHECKS if read_timeout and connection is not None else 0.0
        if self._interval:
            connection.protocol.read_timeout = None  # type: ignore[union-attr]

    def __enter__(self) -> SilenceWatch:
        if self._interval:
            self._loop = asyncio.get_running_loop()
            self._seen = self._content.total_bytes
            self._handle = self._loop.call_later(self._interval, self._check)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _check(self) -> None:
        received = self._content.total_bytes
        if received != self._seen or not self.waiting:
            self._seen, self._quiet = received, 0
        else:
            self._quiet += 1
            if self._quiet >= self.CHECKS:
                self._handle = None
                self._content.set_exception(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))
                return
        self._handle = self._loop.call_later(self._interval, self._check)

    async def readany(self) -> bytes:
        """What the answer's next network read brought (b"" at its end)."""
        self.waiting = True
        try:
            return await self._content.readany()
        finally:
            self.waiting = False

    async def readline(self) -> bytes:
        """The answer's next line, with its ``\\n`` (b"" at its end)."""
        self.waiting = True
        try:
            return await self._content.readline()
        finally:
            self.waiting = False


@contextlib.asynccontextmanager
async def _streamed_answer(
    provider: ProviderConfig, url: str, data: bytes, headers: Mapping[str, str]
) -> AsyncIterator[SilenceWatch]:
    """POST ``data`` for an answer to read as it arrives; HTTP errors raise ``GatewayError``.

    Leaving the block closes the upstream connection unless the answer was read to its end, which
    is how a client's disconnect cancels the upstream request.
    """
    with _mapped_errors(provider):
        async with _session(provider).post(
            url, data=data, headers=_with_extra(provider, headers), timeout=_timeout(provider)
        ) as resp:
            if resp.status >= 400:
                raise_for_status(provider, resp.status, resp.headers, await resp.read())
            with SilenceWatch(resp, provider.read_timeout) as answer:
                yield answer


async def stream_lines(
    provider: ProviderConfig, url: str, payload: JSON, headers: Mapping[str, str]
) -> AsyncGenerator[bytes, None]:
    """POST ``payload`` and yield the answer line by line as bytes arrive.

    Closing the generator (client gone, task cancelled) closes the upstream
    connection, which is how a disconnect cancels the upstream request.
    """
    async with _streamed_answer(provider, url, orjson.dumps(payload), headers) as answer:
        while line := await answer.readline():
            yield line


async def stream_line_blocks(
    provider: ProviderConfig, url: str, payload: JSON, headers: Mapping[str, str]
) -> AsyncGenerator[bytes, None]:
    """Like ``stream_lines``, but all complete lines of one network read as one block (ending in ``\\n``).

    Events that arrived together can then be relayed in one write, without a
    step per line when nothing in them needs reading. The last block may lack
    its ``\\n`` when the answer does. Closing the generator closes the upstream
    connection, as for ``stream_lines``.
    """
    pending = b""
    async with _streamed_answer(provider, url, orjson.dumps(payload), headers) as answer:
        while data := await answer.readany():
            end = data.rfind(b"\n") + 1
            if not end:
                pending += data
            elif pending:
                yield pending + data[:end]
                pending = data[end:]
            elif end == len(data):
                yield data
            else:
                yield data[:end]
                pending = data[end:]
    if pending:
        yield pending


async def stream_bytes(
    provider: ProviderConfig, url: str, data: bytes, headers: Mapping[str, str]
) -> AsyncGenerator[bytes, None]:
    """POST an encoded body and yield the answer's bytes as they arrive (binary framings).

    Closing the generator closes the upstream connection, as for ``stream_lines``.
    """
    async with _streamed_answer(provider, url, data, headers) as answer:
        while chunk := await answer.readany():
            yield chunk

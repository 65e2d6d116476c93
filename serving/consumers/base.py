"""The base consumer of every /v1/ endpoint.

Takes care of what Channels' ``AsyncHttpConsumer`` leaves to us: a body size
limit, one error shape for everything (an exception inside ``handle`` must
never leave the client hanging), the request id, client-disconnect detection
while the answer is being produced, and recording usage after the answer.

When the client leaves, a live stream is cancelled (closing the upstream request) and billed for
what it generated; a whole answer or a held stream, which the provider charges for in full, is
left to finish in the background (``GATEWAY_ABANDONED_ANSWER_SECONDS`` at most) and billed for
its real tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from typing import Any, ClassVar

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.layers import channel_layers
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from billing import usage
from gateway_platform.client_address import client_address_var, scope_client_address
from gateway_platform.errors import GatewayError
from gateway_platform.logging import request_id_var
from gateway_platform.redis_clients import Batch
from serving import admission, failover, metrics
from serving.exchange import Exchange

logger = logging.getLogger(__name__)

# What of a client's X-Request-Id is kept (and echoed as X-Client-Request-Id): printable ASCII, bounded.
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
CLIENT_REQUEST_ID_MAX = 128
# Answers finishing after their client left (``GatewayConsumer._finish_abandoned``): held here so
# the event loop keeps a strong reference to each task until it is done.
_finishing: set[asyncio.Future[None]] = set()
# Requests being served (their application's task), which a stopping server waits for.
_serving: set[asyncio.Future[Any]] = set()


async def finish_abandoned(within_seconds: float) -> int:
    """Wait up to ``within_seconds`` for answers still finishing after their client left (their usage is
    then recorded), and for requests still being served, which may leave such answers when the server
    cancels them (Daphne does, ``asgi.finish_abandoned_when_daphne_stops``); returns how many were running
    at first. Called when the server stops (``asgi.lifespan`` under uvicorn)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_seconds

    def running() -> list[asyncio.Future[Any]]:
        return [task for task in (*_finishing, *_serving) if not task.done()]

    first = waiting = running()
    if waiting:
        logger.info("waiting for %d requests and abandoned answers before shutdown", len(waiting))
    while waiting and (left := deadline - loop.time()) > 0:
        await asyncio.wait(waiting, timeout=left)
        waiting = running()
    return len(first)


def client_request_id(headers: dict[bytes, bytes]) -> str:
    """The client's own request id, made safe to store and to send back in a header."""
    sent = headers.get(b"x-request-id", b"").decode("latin-1")
    return _UNPRINTABLE.sub("", sent).strip()[:CLIENT_REQUEST_ID_MAX]


def service_unavailable() -> GatewayError:
    return GatewayError(
        "The gateway's database or Redis is unavailable; try again shortly.",
        status=503,
        type="api_error",
        code="service_unavailable",
        headers={"Retry-After": "1"},
    )


def internal_error() -> GatewayError:
    return GatewayError(
        "The gateway failed to process the request; it has been logged.",
        status=500,
        type="api_error",
        code="internal_error",
    )


class GatewayConsumer(AsyncHttpConsumer):
    """Subclasses implement ``serve(exchange, body)``; errors and accounting are handled here."""

    endpoint: ClassVar[str] = ""
    methods: ClassVar[tuple[str, ...]] = ("POST",)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self._receive = receive
        self._body_size = 0
        self._too_large = False
        if self.channel_layer_alias in channel_layers:
            await super().__call__(scope, receive, send)
            return
        # No channel layer (the gateway configures none): every message comes from the client, so read
        # them in turn here; Channels' loop (``await_many_dispatch``) spends a task and a wait on each.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            while True:
                await self.dispatch(await receive())

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections (a thread hop) before every message;
        # the /v1/ hot path holds no DB connection, so skip that cost.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def http_request(self, message: dict[str, Any]) -> None:
        chunk = message.get("body", b"")
        self._body_size += len(chunk)
        if self._body_size > settings.GATEWAY["MAX_BODY_BYTES"]:
            self._too_large = True
            self.body = []
        elif not self._too_large:
            self.body.append(chunk)
        if not message.get("more_body"):
            try:
                await self.handle(b"".join(self.body))
            finally:
                await self.disconnect()
            raise StopConsumer()

    async def handle(self, body: bytes) -> None:
        headers = dict(self.scope.get("headers", []))
        # Always our own id: it keys the usage record, so a client must not be able to choose it
        # (a constant id would be billed once; another tenant's id would suppress their record).
        request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        address_token = client_address_var.set(scope_client_address(self.scope))
        exchange = self._exchange = Exchange(
            request_id=request_id,
            endpoint=self.endpoint,
            request_headers=headers,
            client_request_id=client_request_id(headers),
        )
        self._usage_queued = False
        self._answered = False
        self._client_gone = False
        task = asyncio.current_task()
        if task is not None:
            _serving.add(task)
        try:
            await self._serve_until_disconnect(exchange, body)
        finally:
            if task is not None:
                _serving.discard(task)
            if not self._client_gone:  # else the background task records it when the answer is done
                await self._queue_usage(exchange)  # no final body was sent (client gone): record it now
            client_address_var.reset(address_token)
            request_id_var.reset(token)

    async def send_headers(self, *, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        if not self._client_gone:  # an answer finished after the client left goes nowhere
            await super().send_headers(status=status, headers=headers)

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send a piece of the answer; the usage record is queued before the last piece.

        A client holding a whole answer then implies a queued record, even if the
        process is killed the moment the last bytes leave (``tests/billing/test_usage_kill.py``).
        """
        if not more_body:
            await self._queue_usage(self._exchange)
        if self._client_gone:
            return
        # The ASGI message directly (what Channels' send_body → send do): two calls less per relayed write.
        await self.base_send({"type": "http.response.body", "body": body, "more_body": more_body})
        if not more_body:
            self._answered = True

    async def _queue_usage(self, exchange: Exchange) -> None:
        if self._usage_queued or not self._records_usage(exchange):
            return
        self._usage_queued = True
        if exchange.key is None:
            # No valid key, no usage row: junk must not become permanent rows (a metric counts it).
            metrics.observe_unauthenticated(exchange)
            return
        if self._client_gone and exchange.status < 400:
            exchange.status = 499  # produced and billed, but the client never got it
        for settle in exchange.settling:
            try:
                settle()
            except Exception:  # nothing may keep the usage record from being queued
                logger.exception("a step settling with the usage record failed")
        record = exchange.to_usage_record()
        metrics.observe(exchange, record.latency_ms / 1000)
        batch = Batch()
        admission.queue_settlement(exchange, batch)  # budgets and token limits settle in the same round trip
        for command in exchange.end_commands:
            batch.command(*command)
        failover.queue_load(exchange, batch)  # balanced deployments' in-flight count and latency, same trip
        # The in-flight record (billing.inflight) goes after the usage record is queued, in the same round trip.
        after = [("HDEL", exchange.inflight, exchange.request_id)] if exchange.inflight else []
        await usage.record(record, batch=batch, after=after)

    def _records_usage(self, exchange: Exchange) -> bool:
        return True

    async def _serve_until_disconnect(self, exchange: Exchange, body: bytes) -> bool:
        """Serve, watching for the client to leave; True when the answer is left to finish in the background."""
        work = asyncio.ensure_future(self._serve_safely(exchange, body))
        watcher = asyncio.ensure_future(self._wait_for_disconnect())
        try:
            await asyncio.wait((work, watcher), return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and self._answered:
                # uvicorn reports http.disconnect as soon as the whole answer was sent: the client
                # did not leave, so the work still settling after the last byte runs to its end.
                await work
            if not work.done():
                exchange.client_disconnected = True
                exchange.error_code = exchange.error_code or "client_disconnected"
                if exchange.finishes_when_abandoned():
                    self._client_gone = True
                    self._finish_abandoned(exchange, work)
                    return True
        finally:
            if not work.done() and not self._client_gone:
                exchange.client_disconnected = True
                exchange.error_code = exchange.error_code or "client_disconnected"
                if exchange.finishes_when_abandoned():
                    # This task was cancelled (the server is stopping: Daphne cancels open connections'
                    # applications): the answer is paid for upstream, so it finishes in the background and
                    # the server's shutdown waits for it (``finish_abandoned``).
                    self._client_gone = True
                    self._finish_abandoned(exchange, work)
                else:
                    # A live stream's client is gone (or this task was cancelled): closing the upstream
                    # request stops the generation; the relay bills what was generated.
                    exchange.status = exchange.status or 499
                    work.cancel()
            watcher.cancel()
            for task in (watcher,) if self._client_gone else (work, watcher):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return False

    def _finish_abandoned(self, exchange: Exchange, work: asyncio.Future[None]) -> None:
        """Let an answer whose client left finish upstream (bounded), then record what it cost.

        The provider charges for a whole answer or a held stream whether or not anyone reads it, so
        the usage record carries its real tokens and cost (status 499, ``client_disconnected``). The
        task is detached from the ASGI application, which the server may cancel once the client is gone.
        """
        bound = float(settings.GATEWAY["ABANDONED_ANSWER_SECONDS"])

        async def finish() -> None:
            try:
                done, _ = await asyncio.wait((work,), timeout=bound)
                if not done:
                    logger.warning("an abandoned answer passed its bound and is cancelled", extra={"seconds": bound})
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
            finally:
                await self._queue_usage(exchange)

        task = asyncio.ensure_future(finish())
        _finishing.add(task)
        task.add_done_callback(_finishing.discard)

    async def _wait_for_disconnect(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return

    async def _serve_safely(self, exchange: Exchange, body: bytes) -> None:
        try:
            method = self.scope.get("method", "GET")
            if method not in self.methods:
                raise GatewayError(
                    f"Method {method} is not allowed here; use {' or '.join(self.methods)}.",
                    status=405,
                    code="method_not_allowed",
                )
            if self._too_large:
                raise GatewayError(
                    f"The request body exceeds the limit of {settings.GATEWAY['MAX_BODY_BYTES']} bytes.",
                    status=413,
                    code="request_too_large",
                )
            await self.serve(exchange, body)
        except GatewayError as err:
            await self._send_error(exchange, err)
        except (DatabaseError, RedisError):
            logger.exception("a backing service failed while serving %s", self.endpoint)
            await self._send_error(exchange, service_unavailable())
        except Exception:
            logger.exception("unhandled error serving %s", self.endpoint)
            await self._send_error(exchange, internal_error())

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        raise NotImplementedError

    def render_error(self, err: GatewayError) -> bytes:
        """The error body; OpenAI's shape unless an endpoint speaks another API."""
        return err.to_json()

    def render_stream_error(self, err: GatewayError) -> bytes:
        """The SSE event that ends a stream which fails after it started."""
        return b"data: " + err.to_json() + b"\n\n"

    async def _send_error(self, exchange: Exchange, err: GatewayError) -> None:
        exchange.error_code = err.code or err.type
        if exchange.headers_sent:
            # Mid-stream: the status line is gone, so end the stream with an error event.
            await self.send_body(self.render_stream_error(err))
            return
        exchange.status = err.status
        headers = [(b"Content-Type", b"application/json"), *exchange.gateway_headers(err.headers)]
        await self.send_headers(status=err.status, headers=headers)
        exchange.headers_sent = True
        await self.send_body(self.render_error(err))

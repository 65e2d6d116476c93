"""How answers reach the client: a whole JSON body, or an SSE stream relayed chunk by chunk.

Shared by the ``/v1/`` model endpoints (chat, text completions, embeddings).
A stream is pass-through: each upstream chunk is forwarded as it arrives,
with an SSE comment as keep-alive while the upstream is silent, and usage is
accounted on success, error and client disconnect alike. The cost of a stream
is only known at its end, so it follows as an SSE comment before ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import orjson
from django.conf import settings

from billing.costs import cost_usd
from gateway_platform.errors import GatewayError
from providers.adapters.base import Deployment, StreamChunk, Usage, chunk_text, unpack
from providers.adapters.tokens import tokens_for_chars
from routing.resolver import Route
from serving.exchange import Exchange, Responder
from serving.failover import call_with_failover, order_route

SSE_HEADERS = [
    (b"Content-Type", b"text/event-stream; charset=utf-8"),
    (b"Cache-Control", b"no-cache"),
    (b"X-Accel-Buffering", b"no"),
]
JSON_HEADERS = [(b"Content-Type", b"application/json")]
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChunkShape:
    """The OpenAI ``object`` and id prefix of a stream's chunks (for the usage chunk the gateway adds)."""

    object: str
    id_prefix: str


CHAT_CHUNK = ChunkShape("chat.completion.chunk", "chatcmpl-")
TEXT_COMPLETION_CHUNK = ChunkShape("text_completion", "cmpl-")


class ChunkFilter(Protocol):
    """Rewrites or watches the chunks of a relayed stream (``serving.answers.AnswerStream``)."""

    def feed(self, chunk: StreamChunk) -> list[bytes]:
        """The data payloads to send for one chunk."""
        ...

    def tail(self) -> list[bytes]:
        """Whole SSE lines to send after the last chunk, before the cost comment."""
        ...


def route_served(exchange: Exchange, route: Route) -> Deployment:
    """The deployment of the last (successful) attempt."""
    served = exchange.attempts[-1]["model"]
    return next(d for d in route.deployments if d.name == served)


def usage_or_estimate(usage: Usage | None, estimate_prompt: Callable[[], int], completion_chars: int) -> Usage:
    """``usage``, or an estimate of it when the upstream reported none."""
    if usage is not None:
        return usage
    return Usage(prompt_tokens=estimate_prompt(), completion_tokens=tokens_for_chars(completion_chars), estimated=True)


def finish_usage(
    exchange: Exchange, usage: Usage | None, estimate_prompt: Callable[[], int], completion_chars: int
) -> None:
    """Set the exchange's usage and cost; estimate the tokens when the upstream reported none.

    The cost includes answers paid for but not served (``discarded_cost_usd``).
    """
    usage = usage_or_estimate(usage, estimate_prompt, completion_chars)
    exchange.usage = usage
    assert exchange.deployment is not None
    exchange.cost_usd = cost_usd(exchange.deployment, usage) + exchange.discarded_cost_usd


async def send_json(exchange: Exchange, responder: Responder, body: bytes) -> None:
    """Answer 200 with a whole JSON body and the gateway's headers (usage must be final)."""
    exchange.status = 200
    await responder.send_headers(status=200, headers=JSON_HEADERS + exchange.gateway_headers())
    exchange.headers_sent = True
    await responder.send_body(body)


class KeepAlive:
    """One timer per stream: an SSE comment whenever nothing was sent for the keep-alive interval.

    The relay loop only records when it last sent (``sent``); the timer wakes at
    the deadline, so a chunk costs no task or wait of its own. A keep-alive
    before the first chunk commits the response (status 200) and so rules out
    failover: it is only sent when ``may_commit`` (no other deployment is left
    to try). Until then the provider's read timeout bounds the silence.
    """

    __slots__ = ("_deployment", "_exchange", "_interval", "_may_commit", "_responder", "_task", "last_sent")

    def __init__(self, exchange: Exchange, responder: Responder, deployment: Deployment, *, may_commit: bool) -> None:
        self._exchange = exchange
        self._responder = responder
        self._deployment = deployment
        self._may_commit = may_commit
        self._interval = float(settings.GATEWAY["KEEPALIVE_SECONDS"])
        self._task: asyncio.Task[None] | None = None
        self.last_sent = time.monotonic()

    def __enter__(self) -> KeepAlive:
        if self._interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        exchange = self._exchange
        while True:
            delay = self.last_sent + self._interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if exchange.headers_sent or self._may_commit:
                try:
                    await start_stream(exchange, self._responder, self._deployment)
                    await self._responder.send_body(b": keep-alive\n\n", more_body=True)
                except Exception:  # the client is gone: the relay loop learns it from the disconnect
                    return
            self.last_sent = time.monotonic()


async def start_stream(exchange: Exchange, responder: Responder, deployment: Deployment) -> None:
    """Send the SSE status line and headers once (the cost header says ``pending``)."""
    if not exchange.headers_sent:
        exchange.deployment = deployment
        exchange.status = 200
        # Marked before the await: the keep-alive timer and the relay loop must not both send headers.
        exchange.headers_sent = True
        # The cost of a stream is only known at its end: it follows as an SSE comment.
        headers = SSE_HEADERS + exchange.gateway_headers({"X-Gateway-Cost-USD": "pending"})
        await responder.send_headers(status=200, headers=headers)


def usage_chunk(exchange: Exchange, usage: Usage, shape: ChunkShape) -> bytes:
    """A usage-only chunk for a client that asked for usage the upstream did not report."""
    return orjson.dumps(
        {
            "id": f"{shape.id_prefix}{exchange.request_id}",
            "object": shape.object,
            "created": int(time.time()),
            "model": exchange.deployment.name if exchange.deployment else "",
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }
    )


def _keep_translation(chunk: StreamChunk, answer: ChunkFilter | None, record: Callable[[bytes], None] | None) -> None:
    """A pass-through stream's chat chunk: shown to ``answer`` (it may keep the text) and ``record`` only."""
    assert chunk.data is not None
    events = [chunk.data] if answer is None else answer.feed(chunk)
    if record is not None:
        record(b"".join(b"data: " + data + b"\n\n" for data in events))


def in_own_task(function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run each call of ``function`` as a task of its own, awaited by its caller.

    A relayed event wakes the task that reads the upstream, and resuming a task resumes every frame
    it awaits through: from the consumer, failover and the cascade, a dozen frames per event. In a
    task of its own the relay resumes only its own (``bench.stream_events``: about 2 µs less per
    paced event). Cancelling the caller cancels the task and waits for its clean-up, as before.
    """

    @functools.wraps(function)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.ensure_future(function(*args, **kwargs))

    return run


@in_own_task
async def relay_stream(
    exchange: Exchange,
    responder: Responder,
    deployment: Deployment,
    chunks: AsyncIterator[StreamChunk],
    *,
    include_usage: bool,
    may_commit: bool,
    estimate_prompt: Callable[[], int],
    shape: ChunkShape,
    answer: ChunkFilter | None = None,
    record: Callable[[bytes], None] | None = None,
) -> None:
    """Forward ``chunks`` (an adapter's stream) as SSE events, then the cost comment and ``[DONE]``.

    The usage-only chunk is forwarded only when the client asked for usage
    (and made up from an estimate when the upstream sent none). ``answer``
    may rewrite chunks and add lines at the end (code mode, guardrail).

    Pass-through (``exchange.passthrough``): the client gets the upstream's own
    events (``chunk.raw``); the chat translation beside them never goes to the
    client, only to ``record`` (the response cache's recorder) when one is given.

    A run (``chunk.sse``: the events of one upstream read that carry no usage or
    finish reason) goes to the client as it came, in one write, unless ``answer``
    or the pass-through translation must see each of its events.
    """
    passthrough = exchange.passthrough
    direct = answer is None and not passthrough  # a run of unread events goes out as it came
    usage: Usage | None = None
    text_len = 0
    unread: list[StreamChunk] = []  # relayed without reading their text: read only if usage must be estimated
    send_body = responder.send_body
    pending: list[bytes] = []  # events of one upstream read, sent in one write
    try:
        with KeepAlive(exchange, responder, deployment, may_commit=may_commit) as keepalive:
            async for item in chunks:
                if item.sse is not None:  # a run: one network read of events nothing needs to read
                    if direct:
                        unread.append(item)
                        if exchange.first_token_monotonic is None:
                            await start_stream(exchange, responder, deployment)
                            exchange.first_token_monotonic = time.monotonic()
                        pending.append(item.sse)
                        if not item.more:
                            await send_body(b"".join(pending), more_body=True)
                            pending.clear()
                            keepalive.last_sent = time.monotonic()
                        continue
                    parts = unpack(item)  # an answer check or a pass-through translation sees each event
                else:
                    parts = (item,)
                for chunk in parts:
                    if chunk.unread:
                        unread.append(chunk)
                    else:
                        text_len += len(chunk.text)
                        if chunk.usage is not None:
                            usage = chunk.usage
                    if chunk.raw is not None:  # pass-through: the upstream's event, for the responder to relay
                        if exchange.first_token_monotonic is None:
                            await start_stream(exchange, responder, deployment)
                            exchange.first_token_monotonic = time.monotonic()
                        pending.append(chunk.raw)
                    elif chunk.data is not None and not (chunk.usage_only and not include_usage):
                        if passthrough:  # the chat translation beside the upstream's events: never sent
                            _keep_translation(chunk, answer, record)
                        else:
                            if exchange.first_token_monotonic is None:
                                await start_stream(exchange, responder, deployment)
                                exchange.first_token_monotonic = time.monotonic()
                            if answer is None:
                                pending.append(b"data: " + chunk.data + b"\n\n")
                            else:
                                pending.extend(b"data: " + data + b"\n\n" for data in answer.feed(chunk))
                    if pending and not chunk.more:
                        await send_body(b"".join(pending), more_body=True)
                        pending.clear()
                        keepalive.last_sent = time.monotonic()
    except GatewayError:
        if pending:  # what arrived before the upstream failed still reaches the client, in order
            await send_body(b"".join(pending), more_body=True)
        raise
    finally:
        # Runs on success, error and cancellation alike: bill what was generated.
        if exchange.headers_sent or usage is not None:
            exchange.deployment = exchange.deployment or deployment
            if usage is None:
                text_len += sum(len(chunk_text(chunk)) for chunk in unread)
            finish_usage(exchange, usage, estimate_prompt, text_len)
        await chunks.aclose()  # type: ignore[attr-defined]
    await start_stream(exchange, responder, deployment)
    assert exchange.usage is not None
    ending = list(answer.tail()) if answer is not None else []
    if include_usage and usage is None:
        ending.append(b"data: " + usage_chunk(exchange, exchange.usage, shape) + b"\n\n")
    tail = f": x-gateway-cost-usd={exchange.cost_usd:.8f}\n\ndata: [DONE]\n\n".encode()
    if passthrough:  # the client's stream already ended with the upstream's own events
        if record is not None:
            record(b"".join(ending) + tail)
        ending = []
    for line in ending:
        await responder.send_body(line, more_body=True)
    await responder.send_body(tail)


async def stream_with_failover(
    exchange: Exchange, route: Route, relay: Callable[[Deployment, bool], Awaitable[None]]
) -> None:
    """Run ``relay(deployment, last)`` over the route; ``last`` is true for its final deployment."""
    route = await order_route(exchange, route)  # a balanced position may put another deployment last
    final = route.deployments[-1]
    await call_with_failover(exchange, route, lambda deployment: relay(deployment, deployment is final))

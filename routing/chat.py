"""The ``/v1/chat/completions`` flow: authenticate, validate, route, call, answer.

Deployments are tried in route order (``routing.failover``). Streams are forwarded chunk by chunk
as they arrive, with an SSE comment as keep-alive while the upstream is silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import orjson
from django.conf import settings

from billing.costs import cost_usd, estimate_prompt_tokens, tokens_for_chars
from gateway_platform.errors import GatewayError
from providers.adapters import adapter_for
from providers.adapters.base import Completion, Deployment, StreamChunk, Usage
from routing import admission
from routing.auth import authenticate
from routing.exchange import Exchange, Responder
from routing.failover import call_with_failover
from routing.requests import ChatRequest, parse_chat_request
from routing.resolver import Route, resolve
from routing.snapshot import config_cache

logger = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"Content-Type", b"text/event-stream; charset=utf-8"),
    (b"Cache-Control", b"no-cache"),
    (b"X-Accel-Buffering", b"no"),
]
JSON_HEADERS = [(b"Content-Type", b"application/json")]


def no_adapter(deployment: Deployment) -> GatewayError:
    return GatewayError(
        f"Provider kind '{deployment.provider.kind}' is not supported by this gateway build.",
        status=502,
        type="api_error",
        code="provider_kind_unsupported",
        retryable=True,
    )


async def serve_chat(
    exchange: Exchange,
    responder: Responder,
    raw: bytes,
    *,
    parse: Callable[[bytes], ChatRequest] = parse_chat_request,
    allow_x_api_key: bool = False,
) -> None:
    """Answer one chat request (errors propagate as ``GatewayError``).

    ``parse`` turns the body into an OpenAI-shaped ``ChatRequest``; other
    inbound formats (Anthropic Messages) pass their own parser and a
    ``responder`` that translates the OpenAI-shaped answer back.
    """
    cache = config_cache()
    snapshot = await cache.snapshot()
    key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers, allow_x_api_key=allow_x_api_key)
    request = parse(raw)
    exchange.requested_model = request.model
    exchange.stream = request.stream
    route = resolve(snapshot, key, request.model, request.provider)
    exchange.tier = route.tier
    await admission.admit(exchange, key, estimate_prompt_tokens(request.body))
    try:
        if request.stream:
            await _serve_stream(exchange, responder, request, route)
        else:
            await _serve_complete(exchange, responder, request, route)
    finally:
        if exchange.usage is not None:
            with contextlib.suppress(Exception):
                await admission.settle(key, exchange.usage.completion_tokens)


def _finish_usage(exchange: Exchange, request: ChatRequest, usage: Usage | None, completion_chars: int) -> None:
    if usage is None:
        usage = Usage(
            prompt_tokens=estimate_prompt_tokens(request.body),
            completion_tokens=tokens_for_chars(completion_chars),
            estimated=True,
        )
    exchange.usage = usage
    assert exchange.deployment is not None
    exchange.cost_usd = cost_usd(exchange.deployment, usage)


async def _serve_complete(exchange: Exchange, responder: Responder, request: ChatRequest, route: Route) -> None:
    async def attempt(deployment: Deployment) -> Completion:
        adapter = adapter_for(deployment.provider.kind)
        if adapter is None:
            raise no_adapter(deployment)
        return await adapter.complete(deployment, request.body)

    completion = await call_with_failover(exchange, route, attempt)
    exchange.deployment = route_served(exchange, route)
    _finish_usage(exchange, request, completion.usage, len(completion.text))
    exchange.status = 200
    await responder.send_headers(status=200, headers=JSON_HEADERS + exchange.gateway_headers())
    exchange.headers_sent = True
    await responder.send_body(completion.body)


def route_served(exchange: Exchange, route: Route) -> Deployment:
    """The deployment of the last (successful) attempt."""
    served = exchange.attempts[-1]["model"]
    return next(d for d in route.deployments if d.name == served)


async def _next_or_keepalive(
    chunks: AsyncIterator[StreamChunk], exchange: Exchange, responder: Responder, deployment: Deployment
) -> StreamChunk | None:
    """The next chunk; while waiting, an SSE comment every keep-alive interval."""
    pending = asyncio.ensure_future(anext(chunks))
    try:
        while True:
            done, _ = await asyncio.wait((pending,), timeout=settings.GATEWAY["KEEPALIVE_SECONDS"])
            if done:
                break
            await _start_stream(exchange, responder, deployment)
            await responder.send_body(b": keep-alive\n\n", more_body=True)
    except BaseException:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        raise
    try:
        return pending.result()
    except StopAsyncIteration:
        return None


async def _start_stream(exchange: Exchange, responder: Responder, deployment: Deployment) -> None:
    if not exchange.headers_sent:
        exchange.deployment = deployment
        exchange.status = 200
        # The cost of a stream is only known at its end: it follows as an SSE comment.
        headers = SSE_HEADERS + exchange.gateway_headers({"X-Gateway-Cost-USD": "pending"})
        await responder.send_headers(status=200, headers=headers)
        exchange.headers_sent = True


def _usage_chunk(exchange: Exchange, usage: Usage) -> bytes:
    return orjson.dumps(
        {
            "id": f"chatcmpl-{exchange.request_id}",
            "object": "chat.completion.chunk",
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


async def _stream_from(exchange: Exchange, responder: Responder, request: ChatRequest, deployment: Deployment) -> None:
    adapter = adapter_for(deployment.provider.kind)
    if adapter is None:
        raise no_adapter(deployment)
    chunks = aiter(adapter.stream(deployment, request.body))
    usage: Usage | None = None
    text_len = 0
    try:
        while (chunk := await _next_or_keepalive(chunks, exchange, responder, deployment)) is not None:
            if chunk.usage is not None:
                usage = chunk.usage
            text_len += len(chunk.text)
            if chunk.data is None or (chunk.usage_only and not request.include_usage):
                continue
            await _start_stream(exchange, responder, deployment)
            if exchange.first_token_monotonic is None:
                exchange.first_token_monotonic = time.monotonic()
            await responder.send_body(b"data: " + chunk.data + b"\n\n", more_body=True)
    finally:
        # Runs on success, error and cancellation alike: bill what was generated.
        if exchange.headers_sent or usage is not None:
            exchange.deployment = exchange.deployment or deployment
            _finish_usage(exchange, request, usage, text_len)
        await chunks.aclose()  # type: ignore[attr-defined]
    await _start_stream(exchange, responder, deployment)
    assert exchange.usage is not None
    if request.include_usage and usage is None:
        await responder.send_body(b"data: " + _usage_chunk(exchange, exchange.usage) + b"\n\n", more_body=True)
    tail = f": x-gateway-cost-usd={exchange.cost_usd:.8f}\n\ndata: [DONE]\n\n".encode()
    await responder.send_body(tail)


async def _serve_stream(exchange: Exchange, responder: Responder, request: ChatRequest, route: Route) -> None:
    await call_with_failover(exchange, route, lambda deployment: _stream_from(exchange, responder, request, deployment))

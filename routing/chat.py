"""The ``/v1/chat/completions`` flow: authenticate, validate, route, call, answer.

Deployments are tried in route order (``routing.failover``). Streams are forwarded chunk by chunk
as they arrive, with an SSE comment as keep-alive while the upstream is silent (``routing.streaming``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from billing.costs import estimate_prompt_tokens
from gateway_platform.errors import GatewayError
from providers.adapters import adapter_for
from providers.adapters.base import Completion, Deployment
from routing import admission
from routing.auth import authenticate
from routing.exchange import Exchange, Responder
from routing.failover import call_with_failover
from routing.requests import ChatRequest, parse_chat_request
from routing.resolver import Route, resolve
from routing.snapshot import config_cache
from routing.streaming import (
    CHAT_CHUNK,
    finish_usage,
    relay_stream,
    route_served,
    send_json,
    stream_with_failover,
)

logger = logging.getLogger(__name__)


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


def _estimate(request: ChatRequest) -> Callable[[], int]:
    return lambda: estimate_prompt_tokens(request.body)


async def _serve_complete(exchange: Exchange, responder: Responder, request: ChatRequest, route: Route) -> None:
    async def attempt(deployment: Deployment) -> Completion:
        adapter = adapter_for(deployment.provider.kind)
        if adapter is None:
            raise no_adapter(deployment)
        return await adapter.complete(deployment, request.body)

    completion = await call_with_failover(exchange, route, attempt)
    exchange.deployment = route_served(exchange, route)
    finish_usage(exchange, completion.usage, _estimate(request), len(completion.text))
    await send_json(exchange, responder, completion.body)


async def _stream_from(
    exchange: Exchange, responder: Responder, request: ChatRequest, deployment: Deployment, *, last: bool
) -> None:
    adapter = adapter_for(deployment.provider.kind)
    if adapter is None:
        raise no_adapter(deployment)
    await relay_stream(
        exchange,
        responder,
        deployment,
        aiter(adapter.stream(deployment, request.body)),
        include_usage=request.include_usage,
        may_commit=last,
        estimate_prompt=_estimate(request),
        shape=CHAT_CHUNK,
    )


async def _serve_stream(exchange: Exchange, responder: Responder, request: ChatRequest, route: Route) -> None:
    await stream_with_failover(
        exchange, route, lambda deployment, last: _stream_from(exchange, responder, request, deployment, last=last)
    )

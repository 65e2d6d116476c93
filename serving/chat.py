"""The ``/v1/chat/completions`` flow: authenticate, validate, route, call, answer.

Deployments are tried in route order (``serving.failover``). Streams are forwarded chunk by chunk
as they arrive, with an SSE comment as keep-alive while the upstream is silent (``serving.streaming``).
Token reduction, the cascade and the answer checks (code mode, guardrail) are planned per request in
``serving.chat_plan`` and run by ``serving.cascade`` / ``serving.answers``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from gateway_platform.config.snapshot import config_cache
from gateway_platform.errors import GatewayError
from providers.adapters import adapter_for
from providers.adapters.base import Completion, Deployment, StreamChunk
from routing.resolver import Route
from serving import admission, affinity, answers, cascade
from serving import cache_step as response_cache
from serving.auth import authenticate
from serving.chat_plan import ChatPlan, plan_chat
from serving.exchange import Exchange, Responder
from serving.requests import ChatRequest, parse_chat_request
from serving.route_plan import plan_route
from serving.streaming import (
    CHAT_CHUNK,
    finish_usage,
    relay_stream,
    route_served,
    send_json,
)
from serving.summarize import summarize

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
    route = plan_route(exchange, snapshot, key, request)  # skill, then auto / forced tier / named model
    exchange.tier = route.tier
    affinity.identify(exchange, request.body, raw)  # the client's agent session, if it names one
    route = await affinity.sticky_auto(exchange, snapshot, key, request.model, route)  # auto keeps its tier
    await summarize(exchange, snapshot, key, request)  # a long conversation's older turns → one summary
    plan = plan_chat(exchange, snapshot, key, request, route)  # token reduction, cascade, answer checks
    prompt_tokens = request.facts().prompt_tokens  # the messages were read once (serving.requests)
    # The exact cache is read with admission; its keys come from one serialisation of the body.
    probe = response_cache.CacheProbe(exchange, snapshot, material=request.key_material)
    async with admission.admitted(
        exchange,
        key,
        snapshot=snapshot,
        route=route,
        prompt_tokens=prompt_tokens,
        body=request.body,
        also=(plan.cascade.cheap_route,) if plan.cascade else (),
        downgrade=True,
        lookahead=probe,
        prompt_bound=request.token_bound,
    ) as route:  # rate limits and budgets; a budget may downgrade the route
        route = await affinity.keep(exchange, route, plan)  # the session's deployment first (its prompt cache)
        route = affinity.fit_window(exchange, route, request.body, prompt_tokens)  # a window that fits: no trim
        cached = await response_cache.lookup(
            exchange, snapshot, request.body, route, probe, material=request.key_material
        )
        if cached.hit is not None:
            await response_cache.serve_hit(
                exchange, responder, cached, stream=request.stream, include_usage=request.include_usage
            )
        elif request.stream:
            await _serve_stream(exchange, responder, request, route, cached, plan)
        else:
            await _serve_complete(exchange, responder, route, cached, plan)
        await affinity.remember(exchange)


async def _serve_complete(
    exchange: Exchange, responder: Responder, route: Route, cached: response_cache.CacheLookup, plan: ChatPlan
) -> None:
    async def attempt(deployment: Deployment) -> Completion:
        native = plan.native_for(deployment)
        if native is not None:  # the upstream speaks the client's API: its body goes as it came
            passthrough, request = native
            return await passthrough.complete_native(deployment, request, caching=plan.prompt_caching)
        adapter = adapter_for(deployment.provider.kind)
        if adapter is None:
            raise no_adapter(deployment)
        return await adapter.complete(deployment, plan.body_for(deployment))

    completion, route = await cascade.complete(exchange, plan, route, attempt)
    exchange.deployment = route_served(exchange, route)
    finish_usage(exchange, completion.usage, plan.estimate_prompt, completion.estimate_chars())
    body = answers.finish_body(exchange, plan, completion.body)  # code mode, guardrail
    exchange.passthrough = completion.raw is not None  # native_for ruled out answer rewrites for it
    exchange.settling.append(lambda: response_cache.remember(exchange, cached, body))
    await send_json(exchange, responder, completion.raw if completion.raw is not None else body)


def _open_stream(
    exchange: Exchange, plan: ChatPlan, cached: response_cache.CacheLookup, deployment: Deployment
) -> AsyncIterator[StreamChunk]:
    native = plan.native_for(deployment)
    # Set per attempt: the answer that reaches the client is the upstream's own (responders relay it).
    exchange.passthrough = native is not None
    if native is not None:
        passthrough, request = native
        # The chat chunks beside the upstream's events are built only for what reads them: the
        # cache's recorder, an answer check, a held (cascade) attempt. Else only text and usage.
        translate = cached.stores or exchange.holding or answers.stream_filter(exchange, plan) is not None
        return aiter(passthrough.stream_native(deployment, request, caching=plan.prompt_caching, translate=translate))
    adapter = adapter_for(deployment.provider.kind)
    if adapter is None:
        raise no_adapter(deployment)
    return aiter(adapter.stream(deployment, plan.body_for(deployment)))


async def _stream_from(
    exchange: Exchange,
    responder: Responder,
    request: ChatRequest,
    plan: ChatPlan,
    cached: response_cache.CacheLookup,
    deployment: Deployment,
    chunks: AsyncIterator[StreamChunk],
    last: bool,
    checked: bool,
) -> None:
    passthrough = exchange.passthrough  # the client gets the upstream's own events, the cache their translation
    await relay_stream(
        exchange,
        responder if passthrough else cached.watch(responder),  # the cache stores what the client was sent
        deployment,
        chunks,
        include_usage=request.include_usage,
        may_commit=last,
        estimate_prompt=plan.estimate_prompt,
        shape=CHAT_CHUNK,
        answer=answers.stream_filter(exchange, plan, checked=checked),
        record=cached.record() if passthrough else None,
    )


async def _serve_stream(
    exchange: Exchange,
    responder: Responder,
    request: ChatRequest,
    route: Route,
    cached: response_cache.CacheLookup,
    plan: ChatPlan,
) -> None:
    # Stored only when the stream completed normally: the recorder then holds a finished answer.
    exchange.settling.append(lambda: response_cache.remember(exchange, cached))
    await cascade.stream(
        exchange,
        plan,
        route,
        open_stream=lambda deployment: _open_stream(exchange, plan, cached, deployment),
        relay=lambda *args: _stream_from(exchange, responder, request, plan, cached, *args),
    )

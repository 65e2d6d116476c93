"""``/v1/responses``: the OpenAI Responses API (Codex CLI, the Agents SDK) on top of the chat flow.

``POST /v1/responses`` authenticates, validates and translates the body
(``serving.responses.request``), prepends the stored conversation when
``previous_response_id`` is given, and serves it through the shared chat flow
— keys, models/tiers/``auto``/skills/aliases, budgets and rate limits, cache,
failover, usage (endpoint ``responses``) — answering as Responses objects or
events. ``GET`` / ``DELETE /v1/responses/{id}`` read and forget stored responses;
``GET /v1/responses/{id}/input_items`` lists what went into one;
``POST /v1/responses/input_tokens`` estimates a body's input tokens.
"""

from __future__ import annotations

import uuid

import orjson

from gateway_platform.config.snapshot import config_cache
from gateway_platform.errors import GatewayError
from providers.adapters.tokens import estimate_prompt_tokens, estimate_tokens
from routing.aliases import resolved_name
from routing.resolver import resolve
from serving.auth import authenticate
from serving.chat import serve_chat
from serving.consumers.base import GatewayConsumer
from serving.exchange import Exchange
from serving.requests import ChatRequest, Passthrough
from serving.responses import items, store
from serving.responses.passthrough import native_request
from serving.responses.request import build_chat_request, parse_responses_body
from serving.responses.responder import ResponsesResponder


class ResponsesConsumer(GatewayConsumer):
    endpoint = "responses"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        cache = config_cache()
        snapshot = await cache.snapshot()
        key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers)
        parsed = parse_responses_body(body)
        history: list[dict[str, object]] = []
        if parsed.previous_response_id:
            stored = await store.load(key.tenant_id, parsed.previous_response_id, param="previous_response_id")
            history = stored.conversation
        request, context = build_chat_request(parsed, history)
        # Upstreams that speak Responses get the client's body itself (pass-through).
        request.native = Passthrough(native_request(parsed, history), request.body["messages"])
        response_id = f"resp_{uuid.uuid4().hex}"

        async def save(response: dict[str, object]) -> None:
            await store.save(key.tenant_id, key.id, response, [*history, *context.input_items])

        responder = self._responder = ResponsesResponder(
            self, exchange, context, response_id, save if context.store else None
        )

        def prepared(_raw: bytes) -> ChatRequest:
            return request

        await serve_chat(exchange, responder, body, parse=prepared)

    def render_stream_error(self, err: GatewayError) -> bytes:
        """``response.failed`` ends a Responses stream that fails after it started."""
        responder = getattr(self, "_responder", None)
        events = responder.stream_error(err.code or err.type, err.message) if responder is not None else None
        return events if events is not None else super().render_stream_error(err)


class InputTokensConsumer(GatewayConsumer):
    """``POST /v1/responses/input_tokens``: the gateway's token estimate for a Responses body.

    The same estimate budgets and rate limits use (no tokenizer download, no provider call);
    ``previous_response_id`` counts the stored conversation too.
    """

    endpoint = "responses.input_tokens"

    def _records_usage(self, exchange: Exchange) -> bool:
        return False

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        cache = config_cache()
        snapshot = await cache.snapshot()
        key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers)
        parsed = parse_responses_body(body)
        history = []
        if parsed.previous_response_id:
            history = (
                await store.load(key.tenant_id, parsed.previous_response_id, param="previous_response_id")
            ).conversation
        request, _ = build_chat_request(parsed, history)
        model = request.model if request.provider else resolved_name(snapshot, key.tenant_id, request.model)
        resolve(snapshot, key, model, request.provider)  # unknown models are still a 400
        tokens = estimate_prompt_tokens(request.body) + estimate_tokens(
            orjson.dumps(request.body.get("tools", [])).decode()
        )
        exchange.status = 200
        await self.send_headers(
            status=200, headers=[(b"Content-Type", b"application/json"), *exchange.gateway_headers()]
        )
        exchange.headers_sent = True
        await self.send_body(orjson.dumps({"object": "response.input_tokens", "input_tokens": tokens}))


class StoredResponseConsumer(GatewayConsumer):
    """``GET`` / ``DELETE /v1/responses/{id}``: a stored response of this key's tenant."""

    endpoint = "responses.stored"
    methods = ("GET", "DELETE")

    def _records_usage(self, exchange: Exchange) -> bool:
        return False  # reading or deleting a stored answer calls no model

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        cache = config_cache()
        snapshot = await cache.snapshot()
        key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers)
        response_id = self.scope["url_route"]["kwargs"]["response_id"]
        if self.scope.get("method") == "DELETE":
            await store.delete(key.tenant_id, response_id)
            answer: dict[str, object] = {"id": response_id, "object": "response", "deleted": True}
        else:
            answer = (await store.load(key.tenant_id, response_id)).response
        exchange.status = 200
        await self.send_headers(
            status=200, headers=[(b"Content-Type", b"application/json"), *exchange.gateway_headers()]
        )
        exchange.headers_sent = True
        await self.send_body(orjson.dumps(answer))


class InputItemsConsumer(GatewayConsumer):
    """``GET /v1/responses/{id}/input_items``: what went into a stored response of this key's tenant, paginated."""

    endpoint = "responses.input_items"
    methods = ("GET",)

    def _records_usage(self, exchange: Exchange) -> bool:
        return False  # listing stored items calls no model

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        cache = config_cache()
        snapshot = await cache.snapshot()
        key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers)
        query = items.parse_query(self.scope.get("query_string", b""))
        response_id = self.scope["url_route"]["kwargs"]["response_id"]
        stored = await store.load(key.tenant_id, response_id)
        outputs = len(store.output_as_input(stored.response.get("output") or []))
        answer = items.page(items.input_items(response_id, stored.conversation, outputs), query)
        exchange.status = 200
        await self.send_headers(
            status=200, headers=[(b"Content-Type", b"application/json"), *exchange.gateway_headers()]
        )
        exchange.headers_sent = True
        await self.send_body(orjson.dumps(answer))

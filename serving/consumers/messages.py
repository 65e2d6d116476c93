"""``POST /v1/messages``: the Anthropic Messages API on top of the chat flow.

The body is translated into an OpenAI chat request, served by the shared chat
flow (auth, routing, failover, accounting; usage recorded as endpoint
``messages``) and its answer translated back; errors use Anthropic's shape.
Anthropic deployments get the client's own body instead and their answer is
relayed as it came (``serving.anthropic.passthrough``).
Keys are accepted as ``x-api-key`` as well as ``Authorization: Bearer``.
"""

from __future__ import annotations

import orjson

from gateway_platform.config.snapshot import config_cache
from gateway_platform.errors import GatewayError
from providers.adapters.tokens import estimate_prompt_tokens, estimate_tokens
from routing.aliases import resolved_name
from routing.resolver import resolve
from serving.anthropic.passthrough import parse_with_passthrough
from serving.anthropic.stream import AnthropicResponder
from serving.anthropic.translate import error_body, error_event, parse_messages_request
from serving.auth import authenticate
from serving.chat import serve_chat
from serving.consumers.base import GatewayConsumer
from serving.exchange import Exchange
from serving.requests import ChatRequest, parse_json_object


class MessagesConsumer(GatewayConsumer):
    endpoint = "messages"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        responder = AnthropicResponder(self, exchange)
        query = self.scope.get("query_string", b"")

        def parse(raw: bytes) -> ChatRequest:
            return parse_with_passthrough(raw, exchange.request_headers, query)

        await serve_chat(exchange, responder, body, parse=parse, allow_x_api_key=True)

    def render_error(self, err: GatewayError) -> bytes:
        """Anthropic's ``{"type": "error", "error": {"type", "message"}}``."""
        return error_body(err)

    def render_stream_error(self, err: GatewayError) -> bytes:
        """An ``event: error`` SSE event, as Anthropic ends a failed stream."""
        return error_event(err)


class CountTokensConsumer(MessagesConsumer):
    """``POST /v1/messages/count_tokens``: Claude Code asks before long requests.

    The count is the gateway's estimate (no tokenizer is downloaded), the same
    one budgets and rate limits use; it does not call a provider.
    """

    endpoint = "messages.count_tokens"

    def _records_usage(self, exchange: Exchange) -> bool:
        return False

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        cache = config_cache()
        snapshot = await cache.snapshot()
        exchange.key = await authenticate(cache, snapshot, exchange.request_headers, allow_x_api_key=True)
        data = parse_json_object(body)
        data.setdefault("max_tokens", 1)  # not part of a count_tokens request
        request = parse_messages_request(orjson.dumps(data))
        model = request.model if request.provider else resolved_name(snapshot, exchange.key.tenant_id, request.model)
        resolve(snapshot, exchange.key, model, request.provider)  # unknown models are still a 400
        exchange.status = 200
        await self.send_headers(
            status=200, headers=[(b"Content-Type", b"application/json"), *exchange.gateway_headers()]
        )
        exchange.headers_sent = True
        tokens = estimate_prompt_tokens(request.body) + estimate_tokens(
            orjson.dumps(request.body.get("tools", [])).decode()
        )
        await self.send_body(orjson.dumps({"input_tokens": tokens}))

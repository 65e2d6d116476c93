"""``POST /v1/messages``: the Anthropic Messages API on top of the chat flow.

The body is translated into an OpenAI chat request, served by the shared chat
flow (auth, routing, failover, accounting; usage recorded as endpoint
``messages``) and its answer translated back; errors use Anthropic's shape.
Keys are accepted as ``x-api-key`` as well as ``Authorization: Bearer``.
"""

from __future__ import annotations

from gateway_platform.errors import GatewayError
from routing.anthropic_inbound import error_body, error_event, parse_messages_request
from routing.anthropic_inbound_stream import AnthropicResponder
from routing.chat import serve_chat
from routing.consumers.base import GatewayConsumer
from routing.exchange import Exchange


class MessagesConsumer(GatewayConsumer):
    endpoint = "messages"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        responder = AnthropicResponder(self, exchange)
        await serve_chat(exchange, responder, body, parse=parse_messages_request, allow_x_api_key=True)

    def render_error(self, err: GatewayError) -> bytes:
        """Anthropic's ``{"type": "error", "error": {"type", "message"}}``."""
        return error_body(err)

    def render_stream_error(self, err: GatewayError) -> bytes:
        """An ``event: error`` SSE event, as Anthropic ends a failed stream."""
        return error_event(err)

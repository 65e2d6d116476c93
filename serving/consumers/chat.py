"""``POST /v1/chat/completions``."""

from __future__ import annotations

from serving.chat import serve_chat
from serving.consumers.base import GatewayConsumer
from serving.exchange import Exchange


class ChatCompletionsConsumer(GatewayConsumer):
    endpoint = "chat.completions"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        await serve_chat(exchange, self, body)

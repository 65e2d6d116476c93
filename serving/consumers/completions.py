"""``POST /v1/completions`` (legacy text completions and fill-in-the-middle)."""

from __future__ import annotations

from serving.completions import serve_completions
from serving.consumers.base import GatewayConsumer
from serving.exchange import Exchange


class CompletionsConsumer(GatewayConsumer):
    endpoint = "completions"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        await serve_completions(exchange, self, body)

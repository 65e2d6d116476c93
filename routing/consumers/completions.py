"""``POST /v1/completions`` (legacy text completions and fill-in-the-middle)."""

from __future__ import annotations

from routing.completions import serve_completions
from routing.consumers.base import GatewayConsumer
from routing.exchange import Exchange


class CompletionsConsumer(GatewayConsumer):
    endpoint = "completions"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        await serve_completions(exchange, self, body)

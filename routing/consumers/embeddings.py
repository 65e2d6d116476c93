"""``POST /v1/embeddings``."""

from __future__ import annotations

from routing.consumers.base import GatewayConsumer
from routing.embeddings import serve_embeddings
from routing.exchange import Exchange


class EmbeddingsConsumer(GatewayConsumer):
    endpoint = "embeddings"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        await serve_embeddings(exchange, self, body)

"""``POST /v1/embeddings``."""

from __future__ import annotations

from serving.consumers.base import GatewayConsumer
from serving.embeddings import serve_embeddings
from serving.exchange import Exchange


class EmbeddingsConsumer(GatewayConsumer):
    endpoint = "embeddings"

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        await serve_embeddings(exchange, self, body)

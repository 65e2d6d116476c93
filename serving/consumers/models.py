"""``GET /v1/models``: what this key may name (models and tiers)."""

from __future__ import annotations

import orjson

from gateway_platform.config.snapshot import config_cache
from routing.resolver import visible_models
from serving.auth import authenticate
from serving.consumers.base import GatewayConsumer
from serving.exchange import Exchange


class ModelsConsumer(GatewayConsumer):
    endpoint = "models"
    methods = ("GET",)

    def _records_usage(self, exchange: Exchange) -> bool:
        return False  # listing models costs nothing and is not a model call

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        cache = config_cache()
        snapshot = await cache.snapshot()
        key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": owner}
            for name, owner in visible_models(snapshot, key)
        ]
        exchange.status = 200
        await self.send_headers(
            status=200, headers=[(b"Content-Type", b"application/json"), *exchange.gateway_headers()]
        )
        exchange.headers_sent = True
        await self.send_body(orjson.dumps({"object": "list", "data": data}))

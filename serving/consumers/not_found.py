"""Any other /v1/ path: a 404 in OpenAI's error shape rather than Django's HTML page."""

from __future__ import annotations

from gateway_platform.errors import GatewayError
from serving.consumers.base import GatewayConsumer
from serving.exchange import Exchange


class NotFoundConsumer(GatewayConsumer):
    endpoint = "not_found"
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

    def _records_usage(self, exchange: Exchange) -> bool:
        return False

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        raise GatewayError(f"Unknown endpoint: {self.scope['path']}", status=404, code="unknown_url")

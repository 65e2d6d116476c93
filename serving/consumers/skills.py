"""``GET /v1/skills``: the skills this key can use (``X-Gateway-Skill`` / ``"skill"``)."""

from __future__ import annotations

import orjson

from gateway_platform.config.snapshot import config_cache
from routing.skills import usable_skills
from serving.auth import authenticate
from serving.consumers.base import GatewayConsumer
from serving.exchange import Exchange


class SkillsConsumer(GatewayConsumer):
    endpoint = "skills"
    methods = ("GET",)

    def _records_usage(self, exchange: Exchange) -> bool:
        return False  # listing skills is not a model call

    async def serve(self, exchange: Exchange, body: bytes) -> None:
        cache = config_cache()
        snapshot = await cache.snapshot()
        key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers)
        data = [skill.listing() for skill in usable_skills(snapshot, key.tenant_id, key.may_use)]
        exchange.status = 200
        await self.send_headers(
            status=200, headers=[(b"Content-Type", b"application/json"), *exchange.gateway_headers()]
        )
        exchange.headers_sent = True
        await self.send_body(orjson.dumps({"object": "list", "data": data}))

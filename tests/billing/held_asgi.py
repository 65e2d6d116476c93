"""The gateway's ASGI app, except that each ``/v1/`` answer's final body message returns late.

Daphne flushes the last bytes to the client while the consumer still waits in
``send``: that pause is the window in which a gateway process can die "right
after answering". The kill -9 test widens it to make the loss deterministic.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from gateway_platform.asgi import application as gateway

HOLD_SECONDS = float(os.environ.get("TEST_FINAL_SEND_HOLD_SECONDS", "3"))


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
        await gateway(scope, receive, send)
        return

    async def held_send(message: dict[str, Any]) -> None:
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await asyncio.sleep(HOLD_SECONDS)

    await gateway(scope, receive, held_send)

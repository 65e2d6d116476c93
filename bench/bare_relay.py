"""The least a streaming relay can do on the gateway's stack, as a floor for ``bench.stream_events``.

An ASGI app, served by uvicorn with the gateway's flags, that posts the request body to the upstream
(``BARE_RELAY_UPSTREAM``, one pooled aiohttp session) and writes every read of the answer to the client
as it comes: no auth, admission, parsing, accounting or cache. What a relayed event costs here is what
uvicorn, aiohttp and the event loop cost to move it; the gateway's own work per event is the rest.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

_session: aiohttp.ClientSession | None = None


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        if _session is not None:
            await _session.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/live":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if _session is None:
        _session = aiohttp.ClientSession()
    upstream = os.environ["BARE_RELAY_UPSTREAM"]
    async with _session.post(upstream, data=body, headers={"Content-Type": "application/json"}) as answer:
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", answer.headers.get("Content-Type", "text/event-stream").encode())],
            }
        )
        async for chunk in answer.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})

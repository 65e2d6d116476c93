"""The chat flow's ``Responder`` for ``/v1/responses``: chat answers out as Responses answers.

Status and gateway headers pass through (content type kept or set); a 200 JSON
body becomes a ``response`` object and an SSE body goes through
:class:`~serving.responses.answer.ResponsesStream`. With ``store: true`` the
finished response is saved before its last bytes leave (``serving.responses.store``).
An upstream's own Responses answer (``exchange.passthrough``) is relayed as it came
(``serving.responses.passthrough``).
Error bodies from the chat flow are already in OpenAI's shape, which the
Responses API shares, and pass through unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from serving.exchange import Exchange, Responder
from serving.responses.answer import ResponsesStream, response_from_completion
from serving.responses.passthrough import PassthroughStream, as_gateway_response
from serving.responses.request import ResponsesContext

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
SSE_CONTENT_TYPE = b"text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = b"application/json"
Save = Callable[[JSON], Awaitable[None]]


def _with_content_type(headers: list[tuple[bytes, bytes]], value: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"Content-Type", value), *((k, v) for k, v in headers if k.lower() != b"content-type")]


class ResponsesResponder:
    """Translates what the chat flow sends into the Responses API's answers."""

    def __init__(
        self, target: Responder, exchange: Exchange, context: ResponsesContext, response_id: str, save: Save | None
    ) -> None:
        self.target = target
        self.exchange = exchange
        self.context = context
        self.response_id = response_id
        self.created_at = int(time.time())
        self.save = save
        self.stream: ResponsesStream | PassthroughStream | None = None
        self._translate_json = False
        self._pending: list[bytes] = []
        self._saved = False

    async def send_headers(self, *, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = list(headers or [])
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/event-stream"):
            stream = PassthroughStream if self.exchange.passthrough else ResponsesStream
            self.stream = stream(self.context, response_id=self.response_id, created_at=self.created_at)
            headers = _with_content_type(headers, SSE_CONTENT_TYPE)
        elif status == 200 and content_type.startswith(JSON_CONTENT_TYPE):
            self._translate_json = True
        await self.target.send_headers(status=status, headers=headers)

    async def _store(self, response: object) -> None:
        if self.save is None or self._saved or not isinstance(response, dict) or response.get("status") == "failed":
            return
        self._saved = True
        await self.save(response)

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        if self.stream is not None:
            out = self.stream.feed(body) + (b"" if more_body else self.stream.close())
            if self.stream.finished:
                await self._store(self.stream.final)
            if out or not more_body:
                await self.target.send_body(out, more_body=more_body)
            return
        if not self._translate_json:
            await self.target.send_body(body, more_body=more_body)
            return
        self._pending.append(body)
        if more_body:
            return
        raw = b"".join(self._pending)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            logger.error("the chat flow produced a body that is not JSON; passing it through")
            await self.target.send_body(raw)
            return
        if self.exchange.passthrough:  # the upstream's own response object, under the gateway's id
            response = as_gateway_response(data, self.context, self.response_id)
        else:
            response = response_from_completion(
                data, self.context, response_id=self.response_id, created_at=self.created_at
            )
        await self._store(response)
        await self.target.send_body(orjson.dumps(response))

    def stream_error(self, code: str, message: str) -> bytes | None:
        """The events that end this response's stream after a failure (None when not streaming)."""
        return self.stream.fail(code, message) if self.stream is not None else None

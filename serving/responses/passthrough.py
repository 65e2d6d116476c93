"""``/v1/responses`` passed through to upstreams that speak the Responses API (pure, no I/O).

An OpenAI-compatible provider with ``supports_responses`` gets the client's
body as it was sent — tools of every type, ``reasoning``, ``include``,
``prompt_cache_key``, ``store``, fields this gateway does not know yet — with
``model`` replaced and one change the gateway owns: stored conversations live
in the gateway (tenant-scoped, shared by every process), so a
``previous_response_id`` is resolved here and its items are put in front of
``input`` instead of being sent upstream, where the id means nothing.

The upstream's answer reaches the client as it came, with the ``response``
object's ``id`` (the gateway's, so ``GET`` / ``previous_response_id`` work on
any deployment later), ``model`` (the name the client asked for) and
``previous_response_id`` set as on the translated path. ``store: true`` keeps
the final ``response`` of ``response.completed`` / ``.incomplete``.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.adapters.base import NativeRequest
from providers.adapters.openai_responses import FINISHED_EVENTS, RESPONSES_API
from serving.chat_events import ChatEventTranslator
from serving.requests import GATEWAY_FIELDS
from serving.responses.answer import response_object, sse
from serving.responses.request import ParsedResponses, ResponsesContext, input_items

JSON = dict[str, Any]


def native_request(parsed: ParsedResponses, history: list[JSON]) -> NativeRequest:
    """The client's Responses body for an upstream that speaks it (stored history inlined)."""
    body = {k: v for k, v in parsed.data.items() if k not in GATEWAY_FIELDS and k != "previous_response_id"}
    if history:
        body["input"] = [*history, *input_items(parsed.data)]
    return NativeRequest(api=RESPONSES_API, body=body)


def as_gateway_response(response: object, context: ResponsesContext, response_id: str) -> object:
    """The upstream's ``response`` object under the gateway's id and the client's model name."""
    if not isinstance(response, dict):
        return response
    return {
        **response,
        "id": response_id,
        "model": context.model,
        "previous_response_id": context.previous_response_id,
    }


class PassthroughStream(ChatEventTranslator):
    """An upstream's own Responses events, relayed; unnamed ``data:`` events (the chat flow's ``[DONE]``) dropped.

    Events carrying a ``response`` get it through ``as_gateway_response``; the
    final one is kept (``final``) for storing before it is sent.
    """

    def __init__(self, context: ResponsesContext, *, response_id: str, created_at: int) -> None:
        super().__init__()
        self.context = context
        self.response_id = response_id
        self.created_at = created_at
        self.final: JSON | None = None
        self._sequence = 0  # events relayed: the next sequence number

    def _event(self, event: bytes) -> list[bytes]:
        if not (event.startswith(b"event:") or b"\nevent:" in event):
            # Comments only: keep-alives and the cost trailer pass (SSE clients ignore them).
            return [line + b"\n\n" for line in event.splitlines() if line.startswith(b":")]
        self._sequence += 1
        if b'"response":' not in event:
            return [event + b"\n\n"]
        data_line = next((line for line in event.splitlines() if line.startswith(b"data:")), b"")
        try:
            payload = orjson.loads(data_line[5:].strip())
        except orjson.JSONDecodeError:
            return [event + b"\n\n"]
        if not isinstance(payload, dict) or not isinstance(payload.get("response"), dict):
            return [event + b"\n\n"]
        payload["response"] = as_gateway_response(payload["response"], self.context, self.response_id)
        if payload.get("type") in FINISHED_EVENTS:
            self.finished = True
            self.final = payload["response"]
        return [sse(payload)]

    def _finish(self) -> list[bytes]:
        self.finished = True  # the upstream's final event already went out
        return []

    def fail(self, code: str, message: str) -> bytes:
        """``response.failed`` for a stream that broke after it started."""
        if self.finished:
            return b""
        self.finished = True
        failed = response_object(
            self.context,
            response_id=self.response_id,
            created_at=self.created_at,
            status="failed",
            output=[],
            error={"code": code or "server_error", "message": message},
        )
        return sse({"type": "response.failed", "response": failed, "sequence_number": self._sequence})

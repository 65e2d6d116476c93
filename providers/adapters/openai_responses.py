"""The OpenAI Responses API as a pass-through, for OpenAI-compatible providers that serve it.

A provider with ``supports_responses`` takes ``/v1/responses`` requests as the
client wrote them (``POST {base_url}/responses``, ``model`` replaced); its
answer — a ``response`` object or the stream of ``response.*`` events — is
kept verbatim in ``raw`` for the client. Beside it, a chat translation of the
answer (pure functions below: text, function calls, finish, usage from
``response.completed``) feeds what the gateway reads of every answer: usage
and cost, the response cache and the cascade's quality checks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

import orjson

from gateway_platform.errors import GatewayError
from providers import errors, http
from providers.adapters import chat_shapes
from providers.adapters.anthropic import SseEvent, raw_event, sse_events
from providers.adapters.base import JSON, Completion, Deployment, NativeRequest, StreamChunk, Usage, native_body
from providers.adapters.openai import build_headers

RESPONSES_API = "openai.responses"
INCOMPLETE_FINISHES = {"max_output_tokens": "length", "content_filter": "content_filter"}
FINISHED_EVENTS = frozenset({"response.completed", "response.incomplete"})


def _object(value: object) -> JSON:
    return value if isinstance(value, dict) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_usage(usage: object) -> Usage | None:
    """Responses ``usage`` (``input_tokens`` includes cached ones) → ``Usage``; None when absent."""
    data = _object(usage)
    if not isinstance(data.get("input_tokens"), int) or not isinstance(data.get("output_tokens"), int):
        return None
    cached = _object(data.get("input_tokens_details")).get("cached_tokens")
    return Usage(
        prompt_tokens=_count(data["input_tokens"]),
        completion_tokens=_count(data["output_tokens"]),
        cached_prompt_tokens=_count(cached),
    )


def failure(provider: str, response: JSON) -> GatewayError:
    """A ``failed`` response (or an ``error`` event) as the gateway's upstream error."""
    error = _object(response.get("error"))
    return errors.upstream_status(provider, 502, str(error.get("message") or "the response failed"))


def _call(item: JSON) -> JSON | None:
    if item.get("type") == "function_call":
        name, arguments = item.get("name"), item.get("arguments")
    elif item.get("type") == "custom_tool_call":
        name, arguments = item.get("name"), orjson.dumps({"input": item.get("input") or ""}).decode()
    else:
        return None
    call_id = item.get("call_id") or item.get("id")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments or ""}}


def finish_reason(response: JSON, *, has_calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = _object(response.get("incomplete_details")).get("reason")
        return INCOMPLETE_FINISHES.get(str(reason), "length")
    return "tool_calls" if has_calls else "stop"


def parse_response(raw: bytes, *, provider: str, model: str) -> Completion:
    """A whole ``response`` object → a ``Completion`` (chat translation in ``body``, the original in ``raw``)."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise TypeError("not a response object")
    if data.get("status") == "failed":
        raise failure(provider, data)
    texts: list[str] = []
    calls: list[JSON] = []
    for item in data.get("output") or []:
        item = _object(item)
        if item.get("type") == "message":
            texts.extend(
                str(part.get("text") or "")
                for part in item.get("content") or []
                if isinstance(part, dict) and part.get("type") == "output_text"
            )
        elif (call := _call(item)) is not None:
            calls.append(call)
    text = "".join(texts)
    finish = finish_reason(data, has_calls=bool(calls))
    return chat_shapes.completion(
        id=data.get("id"),
        created=int(time.time()),
        model=model,
        text=text,
        calls=calls,
        finish=finish,
        usage=parse_usage(data.get("usage")),
        raw=raw,
    )


@dataclass(slots=True)
class EventTranslator:
    """Responses stream events → chat chunks for the gateway's own reading (pure state machine)."""

    provider: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))
    id: str = ""
    finished: bool = False
    _calls: dict[int, int] = field(default_factory=dict)  # output_index → chat tool call index

    def _chunk(self, delta: JSON, finish: str | None = None, *, text: str = "") -> StreamChunk:
        return chat_shapes.chunk(self.id, self.created, self.model, delta, finish, text=text)

    def feed(self, data: JSON) -> list[StreamChunk]:
        """One decoded event → chat chunks (errors and failed responses raise)."""
        kind = data.get("type")
        if kind == "response.created":
            self.id = str(_object(data.get("response")).get("id") or "")
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta" and isinstance(data.get("delta"), str) and data["delta"]:
            return [self._chunk({"content": data["delta"]}, text=data["delta"])]
        if kind == "response.output_item.added":
            call = _call(_object(data.get("item")))
            if call is None:
                return []
            index = self._calls[int(data.get("output_index") or 0)] = len(self._calls)
            call["function"]["arguments"] = ""
            return [self._chunk({"tool_calls": [{"index": index, **call}]})]
        if kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            known = self._calls.get(int(data.get("output_index") or 0))
            if known is None or not data.get("delta"):
                return []
            return [self._chunk({"tool_calls": [{"index": known, "function": {"arguments": data["delta"]}}]})]
        if kind in FINISHED_EVENTS:
            self.finished = True
            response = _object(data.get("response"))
            chunks = [self._chunk({}, finish_reason(response, has_calls=bool(self._calls)))]
            usage = parse_usage(response.get("usage"))
            if usage is not None:
                chunks.append(chat_shapes.usage_chunk(self.id, self.created, self.model, usage))
            return chunks
        if kind == "response.failed":
            raise failure(self.provider, _object(data.get("response")))
        if kind == "error":
            raise failure(self.provider, {"error": data})
        return []

    def account(self, data: JSON) -> tuple[str, Usage | None]:
        """One decoded event read only for accounting (no translation wanted): the state ``feed``
        keeps (end, errors) without building chunks; the event's answer text and, at the end, usage."""
        kind = data.get("type")
        if kind == "response.output_text.delta":
            delta = data.get("delta")
            return (delta if isinstance(delta, str) else ""), None
        if kind in FINISHED_EVENTS:
            self.finished = True
            return "", parse_usage(_object(data.get("response")).get("usage"))
        if kind == "response.failed":
            raise failure(self.provider, _object(data.get("response")))
        if kind == "error":
            raise failure(self.provider, {"error": data})
        return "", None


class OpenAIResponsesAdapter:
    """``/v1/responses`` passed through to an OpenAI-compatible provider with ``supports_responses``."""

    kind: ClassVar[str] = "openai"
    api: ClassVar[str] = RESPONSES_API

    def serves(self, deployment: Deployment) -> bool:
        provider = deployment.provider
        return provider.kind == self.kind and provider.supports_responses

    def _url(self, deployment: Deployment) -> str:
        return deployment.provider.base_url.rstrip("/") + "/responses"

    async def complete_native(self, deployment: Deployment, request: NativeRequest, *, caching: bool) -> Completion:
        """The client's Responses body sent as is; the ``response`` object kept verbatim in ``raw``."""
        provider = deployment.provider
        payload = native_body(deployment, request, stream=False)
        resp = await http.post_json(provider, self._url(deployment), payload, build_headers(provider))
        try:
            return parse_response(resp.body, provider=provider.name, model=deployment.name)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None

    async def stream_native(
        self, deployment: Deployment, request: NativeRequest, *, caching: bool, translate: bool = True
    ) -> AsyncIterator[StreamChunk]:
        """The client's Responses body streamed; each ``response.*`` event relayed in ``raw`` as it came.

        Without ``translate`` no chat chunk is built beside it: the event's chunk carries its text and usage.
        """
        provider = deployment.provider
        payload = native_body(deployment, request, stream=True)
        translator = EventTranslator(provider=provider.name, model=deployment.name)
        lines = http.stream_lines(provider, self._url(deployment), payload, build_headers(provider))
        try:
            async for event in sse_events(lines):
                if translate:
                    for chunk in _chunks(provider.name, translator, event):
                        yield chunk
                else:
                    yield _accounted(provider.name, translator, event)
        finally:
            await lines.aclose()
        if not translator.finished:
            raise errors.upstream_dropped(provider.name)


def _accounted(provider: str, translator: EventTranslator, event: SseEvent) -> StreamChunk:
    """The event itself (for the client), with its text and usage for the gateway's accounting."""
    try:
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        text, usage = translator.account(data)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise errors.upstream_status(provider, 502, "malformed stream event") from None
    named = event if event.event else SseEvent(str(data.get("type") or "message"), event.data)  # always named
    return StreamChunk(data=None, raw=raw_event(named), text=text, usage=usage)


def _chunks(provider: str, translator: EventTranslator, event: SseEvent) -> list[StreamChunk]:
    """An event's chat translation (for the gateway), then the event itself (for the client)."""
    try:
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        chunks = translator.feed(data)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise errors.upstream_status(provider, 502, "malformed stream event") from None
    usage = [chunk for chunk in chunks if chunk.usage_only]
    chunks = [chunk for chunk in chunks if not chunk.usage_only]
    for chunk in chunks:
        chunk.more = True
    # The usage chunk follows the event that carried it, so the relayed event goes out first.
    named = event if event.event else SseEvent(str(data.get("type") or "message"), event.data)  # always named
    return [*chunks, StreamChunk(data=None, raw=raw_event(named)), *usage]

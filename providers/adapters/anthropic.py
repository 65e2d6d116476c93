"""Anthropic Messages API behind the OpenAI chat interface.

Requests are translated to ``POST {base_url}/v1/messages`` and answers back to
OpenAI ``chat.completion`` / ``chat.completion.chunk`` JSON. Request and
response translation are pure functions in
:mod:`providers.adapters.anthropic_translate`; the stream's pure state machine
(:class:`SseDecoder` + :class:`StreamTranslator`) is here, beside the call
that feeds it.

Prompt caching: the gateway switches it on per request by putting
``"x_gateway_prompt_caching": true`` into the body it hands to the adapter.
The key is never forwarded (only known parameters are translated); when set,
the system prompt's last block and the last tool definition carry
``cache_control: {"type": "ephemeral"}``. Anthropic then reports
``cache_creation_input_tokens`` / ``cache_read_input_tokens``: both are counted
in ``prompt_tokens``, reads also as ``prompt_tokens_details.cached_tokens`` and
``Usage.cached_prompt_tokens``, creations as an extra
``usage.cache_creation_input_tokens`` field of the OpenAI JSON.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

import orjson

from gateway_platform.errors import GatewayError
from gateway_platform.logging import request_id_var
from providers import errors, http
from providers.adapters import chat_shapes
from providers.adapters.anthropic_translate import (
    AnthropicUsage,
    apply_cache_control,
    build_messages_request,
    finish_reason,
    parse_messages_response,
)
from providers.adapters.base import (
    JSON,
    Completion,
    Deployment,
    NativeRequest,
    ProviderConfig,
    StreamChunk,
    native_body,
)

logger = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
PROMPT_CACHING_KEY = "x_gateway_prompt_caching"
MESSAGES_API = "anthropic.messages"
# Client headers a pass-through request keeps (the API version and beta switches; never credentials).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def build_headers(provider: ProviderConfig) -> dict[str, str]:
    """Messages API headers; the request id travels upstream for end-to-end tracing."""
    headers = {
        "content-type": "application/json",
        "anthropic-version": ANTHROPIC_VERSION,
        "X-Request-Id": request_id_var.get(),
    }
    if provider.api_key:
        headers["x-api-key"] = provider.api_key
    return headers


def build_request(deployment: Deployment, body: JSON, *, stream: bool) -> JSON:
    """The upstream body, with prompt caching applied when the gateway asked for it."""
    payload = build_messages_request(deployment, body, stream=stream)
    return apply_cache_control(payload, enabled=bool(body.get(PROMPT_CACHING_KEY)))


def has_cache_control(body: JSON) -> bool:
    """Whether the client placed any ``cache_control`` (top level, tools, system or message blocks)."""
    if body.get("cache_control"):
        return True
    blocks: list[object] = [*(body.get("tools") or [])]
    system = body.get("system")
    blocks += system if isinstance(system, list) else []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            content = message.get("content")
            blocks += content if isinstance(content, list) else []
    return any(isinstance(block, dict) and block.get("cache_control") for block in blocks)


def build_native_request(deployment: Deployment, request: NativeRequest, *, stream: bool, caching: bool) -> JSON:
    """The client's own Messages body for ``deployment``: only ``model`` replaced.

    The gateway's prompt caching (``caching``) marks breakpoints only when the
    client placed none itself: a client that manages its cache keeps its layout
    (and Anthropic's limit of four breakpoints is never crossed by us).
    """
    body = native_body(deployment, request, stream=stream)
    if caching and not has_cache_control(body):
        body = apply_cache_control(orjson.loads(orjson.dumps(body)), enabled=True)  # a copy: the client's is kept
    return body


def build_native_headers(provider: ProviderConfig, request: NativeRequest) -> dict[str, str]:
    """The Messages headers with the client's API version and beta switches."""
    headers = build_headers(provider)
    for name, value in request.headers:
        if name in FORWARDED_HEADERS:
            headers[name] = value
    return headers


# --------------------------------------------------------------------------- stream (pure)


@dataclass(slots=True)
class SseEvent:
    event: str | None
    data: str


@dataclass(slots=True)
class SseDecoder:
    """Server-sent events from lines (``event:`` / ``data:`` / blank line dispatches)."""

    _event: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, line: bytes) -> SseEvent | None:
        """Take one line; return the event it completes, if any."""
        text = line.decode().rstrip("\r\n")
        if not text:
            return self.flush()
        if text.startswith(":"):
            return None
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def flush(self) -> SseEvent | None:
        """The pending event (end of stream without a trailing blank line)."""
        event = SseEvent(self._event, "\n".join(self._data)) if self._data else None
        self._event, self._data = None, []
        return event


async def sse_events(lines: AsyncIterator[bytes]) -> AsyncIterator[SseEvent]:
    """The events of a stream of lines, the last one included when no blank line ends it."""
    decoder = SseDecoder()
    async for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    event = decoder.flush()
    if event is not None:
        yield event


class StreamTranslator:
    """Anthropic stream events → OpenAI ``chat.completion.chunk`` payloads (pure state machine)."""

    def __init__(self, *, provider: str, model: str, created: int) -> None:
        self.provider = provider
        self.model = model
        self.created = created
        self.id = ""
        self.finished = False
        self.usage = AnthropicUsage()
        self.has_usage = False
        self._tool_index: dict[int, int] = {}

    def _chunk(self, delta: JSON, finish: str | None = None, *, text: str = "") -> StreamChunk:
        return chat_shapes.chunk(self.id, self.created, self.model, delta, finish, text=text)

    def feed(self, data: JSON) -> list[StreamChunk]:
        """One decoded event (its ``type`` field says which) → chunks to forward."""
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = str(message.get("id") or "")
            self.has_usage |= self.usage.update(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tool_index[int(data.get("index", 0))] = len(self._tool_index)
                call = {"index": index, "id": block.get("id"), "type": "function"}
                call["function"] = {"name": block.get("name"), "arguments": ""}
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]}, text=block["text"])]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self._chunk({"content": delta["text"]}, text=delta["text"])]
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                index = self._tool_index.get(int(data.get("index", 0)), 0)
                call = {"index": index, "function": {"arguments": delta["partial_json"]}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            self.has_usage |= self.usage.update(data.get("usage"))
            finish = finish_reason((data.get("delta") or {}).get("stop_reason"))
            return [self._chunk({}, finish)] if finish else []
        if kind == "message_stop":
            self.finished = True
            return []
        if kind == "error":
            raise stream_error(self.provider, data.get("error"))
        return []  # ping, content_block_stop, future event types

    def account(self, data: JSON) -> str:
        """One decoded event read only for accounting (pass-through with no translation wanted): the
        state ``feed`` keeps (id, usage, end, errors) without building chunks; the event's answer text."""
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            text = delta.get("text") if delta.get("type") == "text_delta" else None
            return text if isinstance(text, str) else ""
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            text = block.get("text") if block.get("type") == "text" else None
            return text if isinstance(text, str) else ""
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = str(message.get("id") or "")
            self.has_usage |= self.usage.update(message.get("usage"))
        elif kind == "message_delta":
            self.has_usage |= self.usage.update(data.get("usage"))
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            raise stream_error(self.provider, data.get("error"))
        return ""

    def usage_chunk(self) -> StreamChunk | None:
        """The final usage-only chunk (None when the upstream reported no usage)."""
        if not self.has_usage:
            return None
        usage = self.usage
        return chat_shapes.usage_chunk(self.id, self.created, self.model, usage.to_usage(), usage.to_openai())


def stream_error(provider: str, error: object) -> GatewayError:
    """An in-stream ``error`` event → GatewayError (overloaded maps like an HTTP 503)."""
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    status = 503 if kind == "overloaded_error" else 502
    return errors.upstream_status(provider, status, str(message or kind or "stream error"))


# --------------------------------------------------------------------------- I/O


def _decode_event(provider: ProviderConfig, event: SseEvent) -> JSON:
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise errors.upstream_status(provider.name, 502, "malformed stream event") from None
    if not isinstance(data, dict):
        raise errors.upstream_status(provider.name, 502, "malformed stream event")
    return data


def _account(provider: ProviderConfig, translator: StreamTranslator, event: SseEvent) -> str:
    try:
        return translator.account(_decode_event(provider, event))
    except (AttributeError, TypeError, ValueError):
        raise errors.upstream_status(provider.name, 502, "malformed stream event") from None


def raw_event(event: SseEvent) -> bytes:
    """The upstream's event as the client gets it in pass-through: its name and data unchanged."""
    head = b"event: " + event.event.encode() + b"\n" if event.event else b""
    return head + b"data: " + event.data.encode() + b"\n\n"


class AnthropicAdapter:
    kind: ClassVar[str] = "anthropic"
    api: ClassVar[str] = MESSAGES_API

    def _url(self, deployment: Deployment, query: str = "") -> str:
        url = deployment.provider.base_url.rstrip("/") + "/v1/messages"
        return f"{url}?{query}" if query else url

    def serves(self, deployment: Deployment) -> bool:
        """Every Anthropic deployment speaks the Messages API."""
        return deployment.provider.kind == self.kind

    async def complete_native(self, deployment: Deployment, request: NativeRequest, *, caching: bool) -> Completion:
        """The client's Messages body sent as is; the answer kept verbatim in ``raw``."""
        provider = deployment.provider
        payload = build_native_request(deployment, request, stream=False, caching=caching)
        url = self._url(deployment, request.query)
        resp = await http.post_json(provider, url, payload, build_native_headers(provider, request))
        try:
            completion = parse_messages_response(resp.body, model=deployment.name, created=int(time.time()))
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None
        completion.raw = resp.body
        return completion

    async def stream_native(
        self, deployment: Deployment, request: NativeRequest, *, caching: bool, translate: bool = True
    ) -> AsyncIterator[StreamChunk]:
        """The client's Messages body streamed; each upstream event is relayed in ``raw`` as it came.

        The OpenAI translation of each event rides along (``more``) for accounting and the cache;
        without ``translate`` the event's chunk carries only its text, and the usage follows at the end.
        """
        provider = deployment.provider
        payload = build_native_request(deployment, request, stream=True, caching=caching)
        translator = StreamTranslator(provider=provider.name, model=deployment.name, created=int(time.time()))
        url = self._url(deployment, request.query)
        lines = http.stream_lines(provider, url, payload, build_native_headers(provider, request))
        try:
            async for event in sse_events(lines):
                if translate:
                    for chunk in self._native_chunks(provider, translator, event):
                        yield chunk
                else:
                    yield StreamChunk(data=None, raw=raw_event(event), text=_account(provider, translator, event))
        finally:
            await lines.aclose()
        if not translator.finished:
            raise errors.upstream_dropped(provider.name)
        usage = translator.usage_chunk() if translate else None
        if usage is not None:
            yield usage
        elif not translate and translator.has_usage:
            yield StreamChunk(data=None, usage=translator.usage.to_usage())

    @staticmethod
    def _native_chunks(provider: ProviderConfig, translator: StreamTranslator, event: SseEvent) -> list[StreamChunk]:
        try:
            chunks = translator.feed(_decode_event(provider, event))
        except (AttributeError, TypeError, ValueError):
            raise errors.upstream_status(provider.name, 502, "malformed stream event") from None
        for chunk in chunks:
            chunk.more = True
        return [*chunks, StreamChunk(data=None, raw=raw_event(event))]

    async def complete(self, deployment: Deployment, body: JSON) -> Completion:
        """One non-streaming Messages call, answered in OpenAI shape."""
        provider = deployment.provider
        payload = build_request(deployment, body, stream=False)
        resp = await http.post_json(provider, self._url(deployment), payload, build_headers(provider))
        try:
            return parse_messages_response(resp.body, model=deployment.name, created=int(time.time()))
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None

    async def stream(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        """A streaming Messages call as OpenAI chunks, then one usage-only chunk."""
        provider = deployment.provider
        payload = build_request(deployment, body, stream=True)
        translator = StreamTranslator(provider=provider.name, model=deployment.name, created=int(time.time()))
        decoder = SseDecoder()
        lines = http.stream_lines(provider, self._url(deployment), payload, build_headers(provider))
        try:
            async for line in lines:
                event = decoder.feed(line)
                if event is None:
                    continue
                try:
                    chunks = translator.feed(_decode_event(provider, event))
                except (AttributeError, TypeError, ValueError):
                    raise errors.upstream_status(provider.name, 502, "malformed stream event") from None
                for chunk in chunks:
                    yield chunk
            event = decoder.flush()
            if event is not None:
                for chunk in translator.feed(_decode_event(provider, event)):
                    yield chunk
        finally:
            await lines.aclose()
        if not translator.finished:
            # A clean close without message_stop still lost the end of the answer.
            raise errors.upstream_dropped(provider.name)
        usage = translator.usage_chunk()
        if usage is not None:
            yield usage

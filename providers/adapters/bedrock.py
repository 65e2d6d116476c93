"""AWS Bedrock's Converse API (``/converse``, ``/converse-stream``) behind the OpenAI chat interface.

``POST {base_url}/model/{modelId}/converse`` (``converse-stream`` for streams), signed
with AWS Signature Version 4 by botocore's signer (service ``bedrock``, the provider's
``region``). ``base_url`` is ``https://bedrock-runtime.{region}.amazonaws.com``.
Credentials: the provider's ``api_key_env`` names a variable holding
``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]``; without one the standard
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` are used.

Messages are normalised by the Anthropic translation (Converse has the same turn
rules) and mapped block by block. Streams are AWS event-stream frames, decoded by
botocore's ``EventStreamBuffer`` (prelude and message CRCs checked); an
``exception`` frame becomes the matching gateway error.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError
from yarl import URL

from gateway_platform.errors import GatewayError, invalid_request
from gateway_platform.logging import request_id_var
from providers import errors, http
from providers.adapters import chat_shapes
from providers.adapters.anthropic_translate import translate_messages, translate_tools
from providers.adapters.base import JSON, Completion, Deployment, ProviderConfig, StreamChunk, Usage

SERVICE = "bedrock"
DEFAULT_REGION = "us-east-1"
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Exception frames inside a stream → the HTTP status the same error would have had.
STREAM_EXCEPTIONS: dict[str, int] = {
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "validationException": 400,
    "modelStreamErrorException": 502,
    "internalServerException": 502,
    "modelTimeoutException": 504,
}


# --------------------------------------------------------------------------- signing (pure given a clock)


def credentials_for(provider: ProviderConfig, environ: os._Environ[str] | dict[str, str] = os.environ) -> Credentials:
    """The AWS credentials of a provider (its own variable, else the standard AWS ones)."""
    if provider.api_key:
        access_key, _, rest = provider.api_key.partition(":")
        secret, _, token = rest.partition(":")
    else:
        access_key = environ.get("AWS_ACCESS_KEY_ID", "")
        secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
        token = environ.get("AWS_SESSION_TOKEN", "")
    if not access_key or not secret:
        raise GatewayError(
            f"Provider '{provider.name}' has no AWS credentials (ACCESS_KEY_ID:SECRET_ACCESS_KEY).",
            status=502,
            type="api_error",
            code="upstream_auth_failed",
            retryable=True,
        )
    return Credentials(access_key, secret, token or None)


def sign(
    provider: ProviderConfig, url: str, body: bytes, headers: dict[str, str], *, method: str = "POST"
) -> dict[str, str]:
    """``headers`` plus SigV4's ``Authorization``, ``X-Amz-Date`` (and security token) for this exact body."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials_for(provider), SERVICE, provider.region or DEFAULT_REGION).add_auth(request)
    return dict(request.headers.items())


def build_url(deployment: Deployment, *, stream: bool) -> str:
    """The URL exactly as the HTTP client will send it (yarl normalises the quoting), which is what gets signed."""
    model = quote(deployment.upstream_model, safe="")
    return str(
        URL(f"{deployment.provider.base_url.rstrip('/')}/model/{model}/{'converse-stream' if stream else 'converse'}")
    )


def control_plane_url(provider: ProviderConfig, path: str) -> str:
    """``path`` on Bedrock's control plane: ``bedrock.{region}`` beside ``bedrock-runtime.{region}``.

    A ``base_url`` that is not an AWS runtime host (a proxy, the mock) serves both.
    """
    url = URL(provider.base_url.rstrip("/"))
    host = url.host or ""
    if host.startswith("bedrock-runtime"):
        url = url.with_host("bedrock" + host[len("bedrock-runtime") :])
    return str(url.with_path(url.path.rstrip("/") + path))


def build_headers(*, stream: bool) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "application/vnd.amazon.eventstream" if stream else "application/json",
        "X-Request-Id": request_id_var.get(),
    }


# --------------------------------------------------------------------------- request (pure)


def _result_content(content: object) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}]
    return [{"text": b["text"]} for b in content or [] if isinstance(b, dict) and b.get("type") == "text"] or [
        {"text": ""}
    ]


def _block(block: JSON, index: int) -> JSON:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]}
    if kind in ("image", "document"):
        source = block["source"]
        if source.get("type") != "base64":
            raise invalid_request("Bedrock takes images as base64 data: URLs only.", param="messages")
        if kind == "document":
            return {"document": {"format": "pdf", "name": f"document-{index}", "source": {"bytes": source["data"]}}}
        image_format = IMAGE_FORMATS.get(source["media_type"])
        if image_format is None:
            raise invalid_request("Bedrock takes PNG, JPEG, GIF and WebP images.", param="messages")
        return {"image": {"format": image_format, "source": {"bytes": source["data"]}}}
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}}
    if kind == "tool_result":
        return {"toolResult": {"toolUseId": block["tool_use_id"], "content": _result_content(block.get("content"))}}
    raise invalid_request(f"Content of type {kind!r} is not supported by Bedrock.", param="messages")


def translate_tool_choice(choice: object) -> JSON | None:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if isinstance(name, str):
            return {"tool": {"name": name}}
    return None  # "none" cannot be said to Converse: the tools stay, unforced


def build_request(deployment: Deployment, body: JSON) -> JSON:
    """The Converse body for an OpenAI chat body (unknown OpenAI params dropped)."""
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid_request("n > 1 is not supported for this provider.", param="n")
    system, messages = translate_messages(body.get("messages"))
    counter = iter(range(10_000))
    payload: JSON = {
        "messages": [{"role": m["role"], "content": [_block(b, next(counter)) for b in m["content"]]} for m in messages]
    }
    if system:
        payload["system"] = [{"text": block["text"]} for block in system]
    config: JSON = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or deployment.max_output_tokens
    if isinstance(max_tokens, int):
        config["maxTokens"] = max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if isinstance(body.get(ours), int | float) and not isinstance(body.get(ours), bool):
            config[theirs] = body[ours]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    if stops:
        config["stopSequences"] = stops
    if config:
        payload["inferenceConfig"] = config
    tools = translate_tools(body.get("tools"))
    if tools:
        specs = [
            {
                "toolSpec": {
                    "name": t["name"],
                    **({"description": t["description"]} if t.get("description") else {}),
                    "inputSchema": {"json": t["input_schema"]},
                }
            }
            for t in tools
        ]
        tool_config: JSON = {"tools": specs}
        choice = translate_tool_choice(body.get("tool_choice"))
        if choice is not None:
            tool_config["toolChoice"] = choice
        payload["toolConfig"] = tool_config
    return payload


# --------------------------------------------------------------------------- response (pure)


def parse_usage(data: object) -> Usage | None:
    if not isinstance(data, dict) or not isinstance(data.get("inputTokens"), int):
        return None
    read = int(data.get("cacheReadInputTokens") or 0)
    written = int(data.get("cacheWriteInputTokens") or 0)
    return Usage(
        prompt_tokens=int(data["inputTokens"]) + read + written,
        completion_tokens=int(data.get("outputTokens") or 0),
        cached_prompt_tokens=read,
        cache_write_tokens=written,
    )


def finish_reason(stop_reason: object) -> str | None:
    return None if stop_reason is None else FINISH_REASONS.get(str(stop_reason), "stop")


def parse_response(raw: bytes, *, model: str, created: int, request_id: str) -> Completion:
    """A Converse answer → ``Completion`` with an OpenAI ``chat.completion`` body."""
    data = orjson.loads(raw)
    blocks = [b for b in data["output"]["message"]["content"] if isinstance(b, dict)]
    text = "".join(b["text"] for b in blocks if isinstance(b.get("text"), str))
    calls = [
        {
            "id": b["toolUse"]["toolUseId"],
            "type": "function",
            "function": {
                "name": b["toolUse"]["name"],
                "arguments": orjson.dumps(b["toolUse"].get("input") or {}).decode(),
            },
        }
        for b in blocks
        if isinstance(b.get("toolUse"), dict)
    ]
    return chat_shapes.completion(
        id=f"chatcmpl-{request_id}",
        created=created,
        model=model,
        text=text,
        calls=calls,
        finish=finish_reason(data.get("stopReason")),
        usage=parse_usage(data.get("usage")),
    )


@dataclass(slots=True)
class EventStreamDecoder:
    """AWS event-stream bytes → (event type, JSON payload); raises ``ParserError`` on a corrupt frame."""

    _buffer: EventStreamBuffer = field(default_factory=EventStreamBuffer)

    def feed(self, data: bytes) -> Iterator[tuple[str, JSON, EventStreamMessage]]:
        self._buffer.add_data(data)
        for message in self._buffer:
            payload = orjson.loads(message.payload) if message.payload else {}
            yield (
                str(message.headers.get(":event-type") or message.headers.get(":exception-type") or ""),
                payload,
                message,
            )


def stream_exception(provider: str, message: EventStreamMessage, payload: JSON) -> GatewayError:
    kind = str(message.headers.get(":exception-type") or message.headers.get(":error-code") or "")
    text = str(payload.get("message") or message.headers.get(":error-message") or kind or "stream error")
    return errors.upstream_status(provider, STREAM_EXCEPTIONS.get(kind, 502), text)


@dataclass(slots=True)
class StreamTranslator:
    """ConverseStream events → OpenAI chunks (pure state machine)."""

    provider: str
    model: str
    created: int
    id: str
    usage: Usage | None = None
    stopped: bool = False
    _tools: dict[int, int] = field(default_factory=dict)

    def _chunk(self, delta: JSON, finish: str | None = None, *, text: str = "") -> StreamChunk:
        return chat_shapes.chunk(self.id, self.created, self.model, delta, finish, text=text)

    def feed(self, event: str, data: JSON) -> list[StreamChunk]:
        if event == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event == "contentBlockStart":
            start = (data.get("start") or {}).get("toolUse")
            if isinstance(start, dict):
                index = self._tools[int(data.get("contentBlockIndex", 0))] = len(self._tools)
                call = {"index": index, "id": start.get("toolUseId"), "type": "function"}
                call["function"] = {"name": start.get("name"), "arguments": ""}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if event == "contentBlockDelta":
            delta = data.get("delta") or {}
            if isinstance(delta.get("text"), str) and delta["text"]:
                return [self._chunk({"content": delta["text"]}, text=delta["text"])]
            tool = delta.get("toolUse")
            if isinstance(tool, dict) and tool.get("input"):
                index = self._tools.get(int(data.get("contentBlockIndex", 0)), 0)
                return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": tool["input"]}}]})]
            return []  # reasoning content and future delta kinds
        if event == "messageStop":
            self.stopped = True
            return [self._chunk({}, finish_reason(data.get("stopReason")) or "stop")]
        if event == "metadata":
            self.usage = parse_usage(data.get("usage")) or self.usage
        return []

    def usage_chunk(self) -> StreamChunk | None:
        if self.usage is None:
            return None
        return chat_shapes.usage_chunk(self.id, self.created, self.model, self.usage)


# --------------------------------------------------------------------------- I/O


class BedrockAdapter:
    kind: ClassVar[str] = "bedrock"

    async def complete(self, deployment: Deployment, body: JSON) -> Completion:
        provider = deployment.provider
        url = build_url(deployment, stream=False)
        data = orjson.dumps(build_request(deployment, body))
        resp = await http.post_bytes(provider, url, data, sign(provider, url, data, build_headers(stream=False)))
        request_id = resp.headers.get("x-amzn-RequestId") or request_id_var.get()
        try:
            return parse_response(resp.body, model=deployment.name, created=int(time.time()), request_id=request_id)
        except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, ValueError):
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None

    async def stream(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        provider = deployment.provider
        url = build_url(deployment, stream=True)
        data = orjson.dumps(build_request(deployment, body))
        headers = sign(provider, url, data, build_headers(stream=True))
        translator = StreamTranslator(
            provider=provider.name,
            model=deployment.name,
            created=int(time.time()),
            id=f"chatcmpl-{request_id_var.get()}",
        )
        decoder = EventStreamDecoder()
        chunks = http.stream_bytes(provider, url, data, headers)
        try:
            async for raw in chunks:
                try:
                    events = list(decoder.feed(raw))
                except (ParserError, orjson.JSONDecodeError):
                    raise errors.upstream_status(provider.name, 502, "malformed event stream") from None
                for event, payload, message in events:
                    if message.headers.get(":message-type") in ("exception", "error"):
                        raise stream_exception(provider.name, message, payload)
                    try:
                        out = translator.feed(event, payload)
                    except (AttributeError, TypeError, ValueError):
                        raise errors.upstream_status(provider.name, 502, "malformed stream event") from None
                    for chunk in out:
                        yield chunk
        finally:
            await chunks.aclose()
        if not translator.stopped:
            raise errors.upstream_dropped(provider.name)
        usage = translator.usage_chunk()
        if usage is not None:
            yield usage

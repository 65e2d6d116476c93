"""Google Gemini's native API (``generateContent`` / ``streamGenerateContent``) behind the OpenAI chat interface.

``POST {base_url}/v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` with the key in ``x-goog-api-key``; ``base_url``
is the host root (``https://generativelanguage.googleapis.com``).

OpenAI messages are first normalised by the Anthropic translation (system prompt
apart, alternating turns, tool results first) and then mapped block by block:
text → ``text``, base64 images and PDFs → ``inlineData``, assistant tool calls →
``functionCall``, tool results → ``functionResponse`` (named after the call they
answer). Gemini's answer carries no tool-call ids, so the adapter makes them up
(``call_<n>_<response id>``); in a stream a ``functionCall`` arrives whole, and is
forwarded as one tool-call delta. ``usageMetadata`` is cumulative in every chunk;
the last one counts.

Thought signatures: a thinking model (Gemini 2.5, 3) signs its function calls
(``thoughtSignature`` on the ``functionCall`` part) and Gemini 3 refuses the next
turn with 400 unless each signature comes back exactly as received. OpenAI's
tool calls have no field for it that every client keeps, but every client sends
a call's ``id`` back, through every inbound API (chat, Responses, Messages): so
the signature travels inside the id (``encode_call_id``: ``gts<length>_`` and the
signature in URL-safe base64, then our own id) and is put back on the
``functionCall`` part when the conversation returns (``signature_from_id``).
Nothing is stored; an id that carries no signature sends none.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote

import orjson

from gateway_platform.errors import invalid_request
from gateway_platform.logging import request_id_var
from providers import errors, http
from providers.adapters import chat_shapes
from providers.adapters.anthropic_translate import translate_messages
from providers.adapters.base import JSON, Completion, Deployment, ProviderConfig, StreamChunk, Usage

API_VERSION = "v1beta"
FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "OTHER": "stop",
    "LANGUAGE": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}


def build_headers(provider: ProviderConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id_var.get()}
    if provider.api_key:
        headers["x-goog-api-key"] = provider.api_key
    return headers


def build_url(deployment: Deployment, *, stream: bool) -> str:
    base = deployment.provider.base_url.rstrip("/")
    model = quote(deployment.upstream_model, safe="")
    if stream:
        return f"{base}/{API_VERSION}/models/{model}:streamGenerateContent?alt=sse"
    return f"{base}/{API_VERSION}/models/{model}:generateContent"


# --------------------------------------------------------------------------- thought signatures (pure)

_SIGNED_ID = re.compile(r"gts(\d{1,6})_")


def encode_call_id(call_id: str, signature: str) -> str:
    """``call_id`` carrying ``signature`` (URL-safe: ids pass through Anthropic-style id checks too)."""
    encoded = base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return f"gts{len(encoded)}_{encoded}{call_id}"


def signature_from_id(call_id: object) -> str | None:
    """The thought signature a tool-call id carries (None if it carries none)."""
    if not isinstance(call_id, str):
        return None
    match = _SIGNED_ID.match(call_id)
    if match is None:
        return None
    length = int(match.group(1))
    encoded = call_id[match.end() : match.end() + length]
    if len(encoded) != length:
        return None
    standard = encoded.replace("-", "+").replace("_", "/") + "=" * (-length % 4)
    try:
        signature = base64.b64decode(standard, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return signature or None


# --------------------------------------------------------------------------- request (pure)


def _inline(media: str, data: str) -> JSON:
    return {"inlineData": {"mimeType": media, "data": data}}


def _result_value(content: object) -> JSON:
    """A tool result → ``functionResponse.response`` (a JSON object result is passed as is)."""
    if isinstance(content, list):
        content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
    if isinstance(content, str):
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        return {"content": content}
    return {"content": content}


def _part(block: JSON, names: dict[str, str]) -> JSON:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]}
    if kind in ("image", "document"):
        source = block["source"]
        if source.get("type") != "base64":
            raise invalid_request("Gemini takes images as base64 data: URLs only.", param="messages")
        return _inline(source["media_type"], source["data"])
    if kind == "tool_use":
        names[block["id"]] = block["name"]
        part: JSON = {"functionCall": {"name": block["name"], "args": block["input"]}}
        signature = signature_from_id(block["id"])
        if signature is not None:
            part["thoughtSignature"] = signature  # exactly as Gemini sent it
        return part
    if kind == "tool_result":
        name = names.get(block["tool_use_id"])
        if name is None:
            raise invalid_request("A tool message answers no earlier assistant tool call.", param="messages")
        return {"functionResponse": {"name": name, "response": _result_value(block.get("content"))}}
    raise invalid_request(f"Content of type {kind!r} is not supported by Gemini.", param="messages")


def translate_tools(tools: object) -> list[JSON]:
    declarations = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        declaration: JSON = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parameters"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def translate_tool_choice(choice: object) -> JSON | None:
    if choice == "auto":
        return {"functionCallingConfig": {"mode": "AUTO"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if isinstance(name, str):
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def build_request(deployment: Deployment, body: JSON) -> JSON:
    """The ``generateContent`` body for an OpenAI chat body (unknown OpenAI params dropped)."""
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid_request("n > 1 is not supported for this provider.", param="n")
    system, messages = translate_messages(body.get("messages"))
    names: dict[str, str] = {}
    contents = [
        {"role": "model" if m["role"] == "assistant" else "user", "parts": [_part(b, names) for b in m["content"]]}
        for m in messages
    ]
    payload: JSON = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": block["text"]} for block in system]}
    tools = translate_tools(body.get("tools"))
    if tools:
        payload["tools"] = tools
        choice = translate_tool_choice(body.get("tool_choice"))
        if choice is not None:
            payload["toolConfig"] = choice
    config: JSON = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or deployment.max_output_tokens
    if isinstance(max_tokens, int):
        config["maxOutputTokens"] = max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed")):
        if isinstance(body.get(ours), int | float) and not isinstance(body.get(ours), bool):
            config[theirs] = body[ours]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    if stops:
        config["stopSequences"] = stops
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if config:
        payload["generationConfig"] = config
    return payload


# --------------------------------------------------------------------------- response (pure)


def parse_usage(data: object) -> Usage | None:
    """``usageMetadata`` → Usage (thinking tokens are billed as output)."""
    if not isinstance(data, dict) or not isinstance(data.get("promptTokenCount"), int):
        return None
    output = data.get("candidatesTokenCount") or 0
    thoughts = data.get("thoughtsTokenCount") or 0
    cached = data.get("cachedContentTokenCount") or 0
    return Usage(
        prompt_tokens=int(data["promptTokenCount"]),
        completion_tokens=int(output) + int(thoughts),
        cached_prompt_tokens=int(cached),
    )


def _candidate(data: JSON) -> JSON:
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return {}


def _parts(candidate: JSON) -> list[JSON]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts or [] if isinstance(p, dict)]


def _text(parts: list[JSON]) -> str:
    # Thought summaries (``thought: true``) are reasoning, not the answer.
    return "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))


def _call(part: JSON, call_id: str) -> JSON:
    call = part["functionCall"]
    own_id = str(call.get("id") or call_id)
    signature = part.get("thoughtSignature")
    return {
        "id": encode_call_id(own_id, signature) if isinstance(signature, str) and signature else own_id,
        "type": "function",
        "function": {"name": call.get("name"), "arguments": orjson.dumps(call.get("args") or {}).decode()},
    }


def finish_reason(data: JSON, has_calls: bool) -> str | None:
    reason = _candidate(data).get("finishReason")
    if reason is None:
        if data.get("promptFeedback", {}).get("blockReason"):
            return "content_filter"
        return None
    if has_calls and reason == "STOP":
        return "tool_calls"
    return FINISH_REASONS.get(str(reason), "stop")


def parse_response(raw: bytes, *, model: str, created: int) -> Completion:
    """A ``generateContent`` answer → ``Completion`` with an OpenAI ``chat.completion`` body."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    response_id = str(data.get("responseId") or uuid.uuid4().hex[:24])
    parts = _parts(_candidate(data))
    text = _text(parts)
    calls = [
        _call(p, f"call_{i}_{response_id}") for i, p in enumerate(parts) if isinstance(p.get("functionCall"), dict)
    ]
    return chat_shapes.completion(
        id=f"chatcmpl-{response_id}",
        created=created,
        model=model,
        text=text,
        calls=calls,
        finish=finish_reason(data, bool(calls)),
        usage=parse_usage(data.get("usageMetadata")),
    )


@dataclass(slots=True)
class StreamTranslator:
    """``streamGenerateContent`` SSE payloads → OpenAI chunks (pure state machine)."""

    model: str
    created: int
    id: str = ""
    usage: Usage | None = None
    finished: bool = False
    _calls: int = 0
    _started: bool = False
    _chunks: list[StreamChunk] = field(default_factory=list)

    def _chunk(self, delta: JSON, finish: str | None = None, *, text: str = "") -> StreamChunk:
        return chat_shapes.chunk(self.id, self.created, self.model, delta, finish, text=text)

    def feed(self, data: JSON) -> list[StreamChunk]:
        """One SSE ``data:`` payload (a partial ``GenerateContentResponse``) → chunks to forward."""
        if not self.id:
            self.id = f"chatcmpl-{data.get('responseId') or uuid.uuid4().hex[:24]}"
        out: list[StreamChunk] = []
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        parts = _parts(_candidate(data))
        text = _text(parts)
        if text:
            out.append(self._chunk({"content": text}, text=text))
        for part in parts:
            if isinstance(part.get("functionCall"), dict):
                call = _call(part, f"call_{self._calls}_{self.id}")
                out.append(self._chunk({"tool_calls": [{"index": self._calls, **call}]}))
                self._calls += 1
        usage = parse_usage(data.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        finish = finish_reason(data, self._calls > 0)
        if finish is not None:
            self.finished = True
            out.append(self._chunk({}, finish))
        return out

    def usage_chunk(self) -> StreamChunk | None:
        if self.usage is None:
            return None
        return chat_shapes.usage_chunk(self.id, self.created, self.model, self.usage)


def parse_stream_event(line: bytes) -> JSON | None:
    """One SSE line → its JSON payload (None for blank lines, comments and other fields)."""
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if not payload:
        return None
    data = orjson.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


# --------------------------------------------------------------------------- I/O


class GeminiAdapter:
    kind: ClassVar[str] = "gemini"

    async def complete(self, deployment: Deployment, body: JSON) -> Completion:
        provider = deployment.provider
        resp = await http.post_json(
            provider, build_url(deployment, stream=False), build_request(deployment, body), build_headers(provider)
        )
        try:
            return parse_response(resp.body, model=deployment.name, created=int(time.time()))
        except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, ValueError):
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None

    async def stream(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        provider = deployment.provider
        translator = StreamTranslator(model=deployment.name, created=int(time.time()))
        lines = http.stream_lines(
            provider, build_url(deployment, stream=True), build_request(deployment, body), build_headers(provider)
        )
        try:
            async for line in lines:
                try:
                    data = parse_stream_event(line)
                    chunks = translator.feed(data) if data is not None else []
                except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, ValueError):
                    raise errors.upstream_status(provider.name, 502, "malformed stream event") from None
                for chunk in chunks:
                    yield chunk
        finally:
            await lines.aclose()
        if not translator.finished:
            raise errors.upstream_dropped(provider.name)  # no finishReason: the end of the answer was lost
        usage = translator.usage_chunk()
        if usage is not None:
            yield usage

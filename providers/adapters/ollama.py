"""Ollama's native chat API behind the OpenAI chat interface.

Requests go to ``POST {base_url}/api/chat`` (``stream: false`` for whole
answers, NDJSON lines otherwise; the last line has ``done: true`` with
``done_reason``, ``prompt_eval_count`` and ``eval_count``). Ollama has no
``tool_choice``: ``"none"`` drops the tools and a named function keeps only
that tool; ``"required"`` cannot be enforced. ``keep_alive`` is forwarded when
the client sent it, else ``DEFAULT_KEEP_ALIVE``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import ClassVar, Protocol, TypeVar

import orjson

from gateway_platform.errors import invalid_request
from gateway_platform.logging import request_id_var
from providers import errors, http
from providers.adapters import chat_shapes
from providers.adapters.base import JSON, Completion, Deployment, ProviderConfig, StreamChunk, Usage

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_KEEP_ALIVE = "5m"
# OpenAI parameter → Ollama ``options`` key.
OPTION_NAMES: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}


# --------------------------------------------------------------------------- request


def build_headers(provider: ProviderConfig) -> dict[str, str]:
    """JSON headers with the request id; a Bearer key only when configured (proxied Ollama)."""
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id_var.get()}
    if provider.api_key:
        headers["Authorization"] = f"Bearer {provider.api_key}"
    return headers


def _image_data(part: JSON) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    header, sep, data = url.partition(",") if isinstance(url, str) else ("", "", "")
    if not header.startswith("data:") or not header.endswith(";base64") or not sep:
        raise invalid_request("This provider only accepts images as base64 data: URLs.", param="messages")
    return data


def translate_content(content: object) -> tuple[str, list[str]]:
    """OpenAI message content → (text with parts joined by newlines, base64 images)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise invalid_request("Message content must be a string or a list of parts.", param="messages")
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal") and isinstance(part, dict):
            texts.append(str(part.get(kind) or ""))
        elif kind == "image_url" and isinstance(part, dict):
            images.append(_image_data(part))
        else:
            raise invalid_request(f"Content part type {kind!r} is not supported by this provider.", param="messages")
    return "\n".join(texts), images


def _tool_call(call: object) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid_request("Assistant tool_calls need a function name.", param="messages")
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise invalid_request("Tool call arguments must be a JSON object.", param="messages") from None
    return {"function": {"name": function["name"], "arguments": arguments}}


def translate_messages(messages: object) -> list[JSON]:
    """OpenAI ``messages`` → Ollama chat messages."""
    if not isinstance(messages, list) or not messages:
        raise invalid_request("'messages' must be a non-empty array.", param="messages")
    tool_names: dict[str, str] = {}
    result: list[JSON] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(message, dict) or role not in ("system", "developer", "user", "assistant", "tool"):
            raise invalid_request(f"Message role {role!r} is not supported by this provider.", param="messages")
        text, images = translate_content(message.get("content"))
        entry: JSON = {"role": "system" if role == "developer" else role, "content": text}
        if images:
            entry["images"] = images
        if role == "assistant" and message.get("tool_calls"):
            entry["tool_calls"] = [_tool_call(call) for call in message["tool_calls"]]
            for call in message["tool_calls"]:
                tool_names[str(call.get("id"))] = call["function"]["name"]
        if role == "tool" and str(message.get("tool_call_id")) in tool_names:
            entry["tool_name"] = tool_names[str(message.get("tool_call_id"))]
        result.append(entry)
    return result


def select_tools(tools: object, choice: object) -> list[JSON]:
    """Function tools to offer, approximating ``tool_choice`` (Ollama has none)."""
    functions = (
        [t for t in tools if isinstance(t, dict) and t.get("type") == "function"] if isinstance(tools, list) else []
    )
    if choice == "none":
        return []
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        return [t for t in functions if (t.get("function") or {}).get("name") == name]
    return functions


def build_options(body: JSON) -> JSON:
    """Sampling parameters → Ollama ``options`` (``max_tokens`` → ``num_predict``)."""
    options: JSON = {ours: body[theirs] for theirs, ours in OPTION_NAMES.items() if body.get(theirs) is not None}
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    if stops:
        options["stop"] = stops
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        options["num_predict"] = max_tokens
    return options


def build_chat_request(deployment: Deployment, body: JSON, *, stream: bool) -> JSON:
    """The ``/api/chat`` body for an OpenAI chat body."""
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid_request("n > 1 is not supported for this provider.", param="n")
    payload: JSON = {
        "model": deployment.upstream_model,
        "messages": translate_messages(body.get("messages")),
        "stream": stream,
        "keep_alive": body.get("keep_alive") or DEFAULT_KEEP_ALIVE,
    }
    options = build_options(body)
    if options:
        payload["options"] = options
    tools = select_tools(body.get("tools"), body.get("tool_choice"))
    if tools:
        payload["tools"] = tools
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        schema = (response_format.get("json_schema") or {}).get("schema")
        if response_format.get("type") == "json_object":
            payload["format"] = "json"
        elif response_format.get("type") == "json_schema" and isinstance(schema, dict):
            payload["format"] = schema
    return payload


# --------------------------------------------------------------------------- response


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def translate_tool_calls(calls: object, start: int = 0) -> list[JSON]:
    """Ollama tool calls → OpenAI ones (``index`` from ``start``).

    Ollama's calls usually carry no id, so one is generated (``call_<hex>``).
    """
    result: list[JSON] = []
    for offset, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        result.append(
            {
                "index": start + offset,
                "id": call.get("id") or "call_" + uuid.uuid4().hex[:24],
                "type": "function",
                "function": {
                    "name": function.get("name"),
                    "arguments": arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode(),
                },
            }
        )
    return result


def finish_reason(done_reason: object, has_tool_calls: bool) -> str:
    """Ollama ``done_reason`` → OpenAI ``finish_reason``."""
    if has_tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def parse_usage(data: JSON) -> Usage | None:
    """``prompt_eval_count`` / ``eval_count`` → Usage (None when neither is present).

    Ollama omits ``prompt_eval_count`` when the whole prompt came from its KV
    cache; that counts as 0 prompt tokens.
    """
    prompt, completion = data.get("prompt_eval_count"), data.get("eval_count")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=prompt if isinstance(prompt, int) else 0, completion_tokens=completion or 0)


def parse_chat_response(raw: bytes, *, model: str, created: int, completion_id: str) -> Completion:
    """A non-streamed ``/api/chat`` answer → OpenAI ``chat.completion``."""
    data = orjson.loads(raw)
    message = data.get("message") or {}
    text = message.get("content") or ""
    calls = [{k: v for k, v in c.items() if k != "index"} for c in translate_tool_calls(message.get("tool_calls"))]
    return chat_shapes.completion(
        id=completion_id,
        created=created,
        model=model,
        text=text,
        calls=calls,
        finish=finish_reason(data.get("done_reason"), bool(calls)),
        usage=parse_usage(data),
    )


class StreamTranslator:
    """Ollama NDJSON objects → OpenAI ``chat.completion.chunk`` payloads (pure state machine)."""

    def __init__(self, *, provider: str, model: str, created: int, completion_id: str) -> None:
        self.provider = provider
        self.model = model
        self.created = created
        self.id = completion_id
        self.finished = False
        self.usage: Usage | None = None
        self._started = False
        self._tool_calls = 0

    def _chunk(self, delta: JSON, finish: str | None = None, *, text: str = "") -> StreamChunk:
        return chat_shapes.chunk(self.id, self.created, self.model, delta, finish, text=text)

    def feed(self, data: JSON) -> list[StreamChunk]:
        """One NDJSON object → chunks to forward."""
        if "error" in data:
            raise errors.upstream_status(self.provider, 502, str(data["error"]))
        chunks: list[StreamChunk] = []
        if not self._started:
            self._started = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        message = data.get("message") or {}
        text = message.get("content") or ""
        if text:
            chunks.append(self._chunk({"content": text}, text=text))
        calls = translate_tool_calls(message.get("tool_calls"), start=self._tool_calls)
        if calls:
            self._tool_calls += len(calls)
            chunks.append(self._chunk({"tool_calls": calls}))
        if data.get("done") is True:
            self.finished = True
            self.usage = parse_usage(data)
            chunks.append(self._chunk({}, finish_reason(data.get("done_reason"), self._tool_calls > 0)))
        return chunks

    def usage_chunk(self) -> StreamChunk | None:
        """The final usage-only chunk (None when Ollama reported no counts)."""
        if self.usage is None:
            return None
        return chat_shapes.usage_chunk(self.id, self.created, self.model, self.usage)


# --------------------------------------------------------------------------- I/O


async def list_models(provider: ProviderConfig) -> list[str]:
    """Names of the models the Ollama server has (``GET /api/tags``), for health probes."""
    resp = await http.get_json(provider, provider.base_url.rstrip("/") + "/api/tags", build_headers(provider))
    try:
        models = orjson.loads(resp.body).get("models") or []
        names = [m.get("name") or m.get("model") for m in models if isinstance(m, dict)]
    except (orjson.JSONDecodeError, AttributeError):
        raise errors.upstream_status(provider.name, 502, "malformed model list") from None
    return [name for name in names if isinstance(name, str)]


class NdjsonTranslator(Protocol):
    """A pure state machine turning Ollama NDJSON objects into OpenAI-shaped chunks."""

    finished: bool

    def feed(self, data: JSON) -> list[StreamChunk]: ...

    def usage_chunk(self) -> StreamChunk | None: ...


async def post_translated(provider: ProviderConfig, url: str, payload: JSON, parse: Callable[[bytes], T]) -> T:
    """POST ``payload`` and ``parse`` the whole answer; a malformed answer is a 502."""
    resp = await http.post_json(provider, url, payload, build_headers(provider))
    try:
        return parse(resp.body)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None


async def stream_translated(
    provider: ProviderConfig, url: str, payload: JSON, translator: NdjsonTranslator
) -> AsyncGenerator[StreamChunk, None]:
    """POST ``payload``, feed the NDJSON answer to ``translator`` line by line, then its usage chunk.

    A stream that ends before ``done: true`` raises ``upstream_dropped``.
    """
    lines = http.stream_lines(provider, url, payload, build_headers(provider))
    try:
        async for line in lines:
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
                chunks = translator.feed(data)
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                raise errors.upstream_status(provider.name, 502, "malformed stream line") from None
            for chunk in chunks:
                yield chunk
            if translator.finished:
                break
    finally:
        await lines.aclose()
    if not translator.finished:
        raise errors.upstream_dropped(provider.name)
    usage = translator.usage_chunk()
    if usage is not None:
        yield usage


class OllamaAdapter:
    kind: ClassVar[str] = "ollama"

    def _url(self, deployment: Deployment) -> str:
        return deployment.provider.base_url.rstrip("/") + "/api/chat"

    async def complete(self, deployment: Deployment, body: JSON) -> Completion:
        """One non-streaming ``/api/chat`` call, answered in OpenAI shape."""
        payload = build_chat_request(deployment, body, stream=False)
        return await post_translated(
            deployment.provider,
            self._url(deployment),
            payload,
            lambda raw: parse_chat_response(
                raw, model=deployment.name, created=int(time.time()), completion_id=new_completion_id()
            ),
        )

    async def stream(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        """A streaming ``/api/chat`` call as OpenAI chunks, then one usage-only chunk."""
        provider = deployment.provider
        payload = build_chat_request(deployment, body, stream=True)
        translator = StreamTranslator(
            provider=provider.name, model=deployment.name, created=int(time.time()), completion_id=new_completion_id()
        )
        chunks = stream_translated(provider, self._url(deployment), payload, translator)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

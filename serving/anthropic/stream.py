"""Anthropic Messages answers from the OpenAI-shaped chat flow (the response direction).

``translate_completion`` turns a whole OpenAI ``chat.completion`` into an
Anthropic ``message``. :class:`StreamTranslator` is a pure state machine: it takes the SSE pieces the
chat flow forwards (``data: {chunk}``, ``: keep-alive``, ``: x-gateway-cost-usd=``,
``data: [DONE]``, a ``data: {"error": ...}`` failure event; a piece may hold
several events or end mid-event) and returns Anthropic's event sequence:
``message_start``, ``content_block_start`` / ``content_block_delta`` /
``content_block_stop`` per text or ``tool_use`` block, ``message_delta`` (stop
reason and usage, sent once the final usage chunk is in), ``message_stop``;
keep-alives become ``ping``, other comments pass through unchanged.

:class:`AnthropicResponder` wraps the consumer as the chat flow's
``Responder`` and applies the translation to whole answers and streams alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeGuard

import orjson

from serving.anthropic.translate import JSON, error_payload, sse_event
from serving.chat_events import ChatEventTranslator
from serving.exchange import Exchange, Responder

logger = logging.getLogger(__name__)

KEEPALIVE_COMMENT = b"keep-alive"
STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
SSE_CONTENT_TYPE = b"text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = b"application/json"
PING = sse_event("ping", {"type": "ping"})


# --------------------------------------------------------------------------- whole answers


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: object) -> JSON:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class MessageUsage:
    """Anthropic's token counts: ``input_tokens`` excludes cache reads and writes."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: object) -> MessageUsage | None:
        """OpenAI ``usage`` → Anthropic counts (None when absent or malformed)."""
        if not isinstance(usage, dict):
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not _is_int(prompt) or not _is_int(completion):
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        created = usage.get("cache_creation_input_tokens")
        read = cached if _is_int(cached) else 0
        written = created if _is_int(created) else 0
        return cls(
            input_tokens=max(0, prompt - read - written),
            output_tokens=completion,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=written,
        )

    def to_json(self) -> JSON:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


def stop_reason(finish_reason: object, *, has_tool_use: bool = False) -> str:
    """OpenAI ``finish_reason`` → Anthropic ``stop_reason`` (tool calls win over a plain stop)."""
    reason = STOP_REASONS.get(str(finish_reason), "end_turn") if finish_reason is not None else "end_turn"
    return "tool_use" if has_tool_use and reason == "end_turn" else reason


def tool_input(arguments: object) -> JSON:
    """An OpenAI tool call's ``arguments`` JSON string → the ``tool_use`` input object."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments or "{}") if isinstance(arguments, str | bytes) else {}
    except orjson.JSONDecodeError:
        logger.warning("tool call arguments are not valid JSON; sending an empty input")
        return {}
    return value if isinstance(value, dict) else {}


def _message_text(message: JSON) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    text = content if isinstance(content, str) else ""
    refusal = message.get("refusal")
    return text or (refusal if isinstance(refusal, str) else "")


def translate_completion(data: object, *, message_id: str, model: str) -> JSON:
    """An OpenAI ``chat.completion`` → an Anthropic ``message``."""
    choices = _object(data).get("choices")
    choice = _object(choices[0]) if isinstance(choices, list) and choices else {}
    message = _object(choice.get("message"))
    content: list[JSON] = []
    text = _message_text(message)
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            content.append(
                {
                    "type": "tool_use",
                    "id": str(call.get("id") or f"toolu_{message_id}_{len(content)}"),
                    "name": str(function.get("name") or ""),
                    "input": tool_input(function.get("arguments")),
                }
            )
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    usage = MessageUsage.from_openai(_object(data).get("usage")) or MessageUsage()
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), has_tool_use=has_tool_use),
        "stop_sequence": None,
        "usage": usage.to_json(),
    }


# --------------------------------------------------------------------------- streams


class StreamTranslator(ChatEventTranslator):
    """OpenAI ``chat.completion.chunk`` SSE pieces → Anthropic stream events (pure)."""

    def __init__(self, *, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        super().__init__()
        self.started = False
        self.usage: MessageUsage | None = None
        self.finish_reason: str | None = None
        self._next_index = 0
        self._open: int | None = None  # index of the open content block
        self._open_is_text = False
        self._tools: dict[int, tuple[str, int]] = {}  # OpenAI tool call index → (call id, block index)

    def _comment(self, line: bytes) -> list[bytes]:
        if line[1:].strip() == KEEPALIVE_COMMENT:
            return [] if self.finished else [*self._start(), PING]
        return super()._comment(line)  # e.g. the stream's cost, for clients that read it

    def _chunk(self, chunk: JSON) -> list[bytes]:
        out = self._start()
        usage = MessageUsage.from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            out.extend(self._choice(choices[0]))
        return out

    def _choice(self, choice: JSON) -> list[bytes]:
        out: list[bytes] = []
        delta = _object(choice.get("delta"))
        for name in ("content", "refusal"):
            text = delta.get(name)
            if isinstance(text, str) and text:
                out.extend(self._text(text))
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                out.extend(self._tool_call(call))
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self.finish_reason = finish
            out.extend(self._close_block())
        return out

    # ----------------------------------------------------------------- output

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        usage = {"input_tokens": self.usage.input_tokens if self.usage else 0, "output_tokens": 0}
        message: JSON = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [sse_event("message_start", {"type": "message_start", "message": message})]

    def _open_block(self, block: JSON, *, is_text: bool) -> list[bytes]:
        out = self._close_block()
        index = self._open = self._next_index
        self._next_index += 1
        self._open_is_text = is_text
        out.append(
            sse_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
        )
        return out

    def _close_block(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _delta(self, index: int, delta: JSON) -> bytes:
        return sse_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or not self._open_is_text:
            out.extend(self._open_block({"type": "text", "text": ""}, is_text=True))
        assert self._open is not None
        out.append(self._delta(self._open, {"type": "text_delta", "text": text}))
        return out

    def _tool_call(self, call: JSON) -> list[bytes]:
        out: list[bytes] = []
        index = call.get("index")
        position = index if _is_int(index) else 0
        function = _object(call.get("function"))
        call_id = call.get("id")
        known = self._tools.get(position)
        if known is None or (isinstance(call_id, str) and call_id and call_id != known[0]):
            call_id = call_id if isinstance(call_id, str) and call_id else f"toolu_{self.message_id}_{position}"
            block = {"type": "tool_use", "id": call_id, "name": str(function.get("name") or ""), "input": {}}
            out.extend(self._open_block(block, is_text=False))
            assert self._open is not None
            known = self._tools[position] = (call_id, self._open)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(self._delta(known[1], {"type": "input_json_delta", "partial_json": arguments}))
        return out

    def _finish(self) -> list[bytes]:
        out = [*self._start(), *self._close_block()]
        self.finished = True
        usage = (self.usage or MessageUsage()).to_json()
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(self.finish_reason, has_tool_use=bool(self._tools)),
                "stop_sequence": None,
            },
            "usage": usage,
        }
        out.append(sse_event("message_delta", delta))
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return out

    def _error(self, error: object) -> list[bytes]:
        self.finished = True
        message = error.get("message") if isinstance(error, dict) else error
        return [sse_event("error", error_payload("api_error", str(message or "The stream failed.")))]


MESSAGE_START = b"event: message_start\n"


def with_model(message: object, model: str) -> object:
    """An Anthropic ``message`` naming the model the client asked for (as every other path answers)."""
    return {**message, "model": model} if isinstance(message, dict) and "model" in message else message


class PassthroughEvents(ChatEventTranslator):
    """An Anthropic upstream's own events, relayed as they came (pass-through).

    Their chat translation stays in the gateway (``serving.streaming.relay_stream``):
    named events go out unchanged — except that ``message_start`` names the model
    the client asked for —, unnamed ``data:`` events (the chat flow's ``[DONE]``)
    are dropped, keep-alives become ``ping`` and the cost comment passes.
    """

    def __init__(self, *, model: str) -> None:
        super().__init__()
        self.model = model

    def _event(self, event: bytes) -> list[bytes]:
        if event.startswith(MESSAGE_START):
            try:
                start = orjson.loads(event[len(MESSAGE_START) :].removeprefix(b"data:").strip())
            except orjson.JSONDecodeError:
                return [event + b"\n\n"]
            if isinstance(start, dict):
                start["message"] = with_model(start.get("message"), self.model)
            return [sse_event("message_start", start)]
        if event.startswith(b"event:") or b"\nevent:" in event:
            return [event + b"\n\n"]
        out: list[bytes] = []
        for line in event.splitlines():
            if line.startswith(b":"):
                out.extend([PING] if line[1:].strip() == KEEPALIVE_COMMENT else [line + b"\n\n"])
        return out

    def _finish(self) -> list[bytes]:
        self.finished = True  # the upstream's message_stop already went out
        return []


def _replace_content_type(headers: list[tuple[bytes, bytes]], value: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"Content-Type", value), *((k, v) for k, v in headers if k.lower() != b"content-type")]


class AnthropicResponder:
    """The chat flow's ``Responder`` for ``/v1/messages``: OpenAI answers out as Anthropic ones.

    Status and gateway headers pass through (content type replaced); a 200
    JSON body becomes a ``message``, an SSE body goes through :class:`StreamTranslator`.
    An Anthropic upstream's own answer (``exchange.passthrough``) is relayed as it came
    (:class:`PassthroughEvents`). Anything else passes through unchanged.
    """

    def __init__(self, target: Responder, exchange: Exchange) -> None:
        self.target = target
        self.exchange = exchange
        self.message_id = f"msg_{exchange.request_id}"
        self.stream: ChatEventTranslator | None = None
        self._translate_json = False
        self._pending: list[bytes] = []

    async def send_headers(self, *, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = list(headers or [])
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/event-stream"):
            self.stream = (
                PassthroughEvents(model=self.exchange.requested_model)
                if self.exchange.passthrough
                else StreamTranslator(message_id=self.message_id, model=self.exchange.requested_model)
            )
            headers = _replace_content_type(headers, SSE_CONTENT_TYPE)
        elif status == 200 and content_type.startswith(JSON_CONTENT_TYPE):
            self._translate_json = True
            headers = _replace_content_type(headers, JSON_CONTENT_TYPE)
        await self.target.send_headers(status=status, headers=headers)

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        if self.stream is not None:
            out = self.stream.feed(body) + (b"" if more_body else self.stream.close())
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
        model = self.exchange.requested_model
        if self.exchange.passthrough:  # the upstream's own message: only its model is renamed
            await self.target.send_body(orjson.dumps(with_model(data, model)))
            return
        message = translate_completion(data, message_id=self.message_id, model=model)
        await self.target.send_body(orjson.dumps(message))

"""Anthropic Messages wire format, including prompt-caching accounting.

Pure functions plus :class:`PromptCache`, a bounded in-memory set of cached
prefix hashes (one per app).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.mock_upstream.replies import BadRequest, Conversation, Reply, StreamPlan

JSON = dict[str, Any]
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"

_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


# Thinking blocks are signed as Anthropic signs them: a block that comes back changed is refused.
THINKING_KEY = b"mock-thinking-signing-key"
THINKING_TYPES = frozenset({"enabled", "adaptive"})


def sign(text: str) -> str:
    """The signature the mock gives a thinking block (or a redacted block's token)."""
    return base64.b64encode(hmac.new(THINKING_KEY, text.encode(), hashlib.sha256).digest()).decode()


def redacted_data() -> str:
    """An opaque ``redacted_thinking`` payload the mock can verify later."""
    token = uuid.uuid4().hex
    return f"{token}.{sign(token)}"


def check_thinking_blocks(body: JSON) -> None:
    """400, as Anthropic answers, when a thinking block of the history is not exactly as the mock sent it."""
    for i, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            kind = block.get("type") if isinstance(block, dict) else None
            where = f"messages.{i}.content.{j}"
            if kind == "thinking":
                text, signature = block.get("thinking"), block.get("signature")
                if not isinstance(text, str) or not isinstance(signature, str) or signature != sign(text):
                    raise BadRequest(f"{where}: Invalid `signature` in `thinking` block", param=where)
            elif kind == "redacted_thinking":
                token, _, signature = str(block.get("data") or "").partition(".")
                if not token or signature != sign(token):
                    raise BadRequest(f"{where}: Invalid `data` in `redacted_thinking` block", param=where)


def thinking_blocks(body: JSON, conversation: Conversation) -> list[JSON]:
    """The thinking a request with ``thinking`` enabled or adaptive gets first: one signed, one redacted."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in THINKING_TYPES:
        return []
    text = f"Mock thinking about: {conversation.last_user_text[:60]}"
    return [
        {"type": "thinking", "thinking": text, "signature": sign(text)},
        {"type": "redacted_thinking", "data": redacted_data()},
    ]


def error_body(status: int, message: str) -> JSON:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def event(name: str, payload: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _block_text(block: object) -> list[str]:
    """Prompt text carried by one content block (text, or a tool_result's content)."""
    if isinstance(block, str):
        return [block]
    if not isinstance(block, dict):
        return []
    if block.get("type", "text") == "text" and isinstance(block.get("text"), str):
        return [block["text"]]
    if block.get("type") == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return [content]
        if isinstance(content, list):
            return [t for item in content for t in _block_text(item)]
    return []


def _blocks(content: object) -> list[object]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return list(content)
    return []


@dataclass
class CacheInfo:
    """The cacheable prefixes of a request: one per ``cache_control`` block, the last one first-class."""

    prefix_hash: str | None = None
    prefix_chars: int = 0
    # Every breakpoint as (hash, chars), in order: Anthropic reads the longest prefix cached at any of them.
    breakpoints: list[tuple[str, int]] = field(default_factory=list)


def parse_messages(body: JSON) -> tuple[Conversation, int, CacheInfo]:
    """Parse a Messages request into (conversation, ``max_tokens``, cache info)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (a positive integer)")

    conversation = Conversation()
    # (role, block) in cache order: system blocks, then message blocks.
    items: list[tuple[str, object]] = []
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    for block in system if isinstance(system, list) else []:
        items.append(("system", block))

    last: JSON = {}
    for message in messages:
        # Today's Messages API also allows ``system`` messages inside ``messages``.
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
            raise BadRequest("messages: each message needs role 'user', 'assistant' or 'system'")
        last = message
        blocks = _blocks(message.get("content"))
        items.extend((message["role"], block) for block in blocks)
        if message["role"] == "user":
            conversation.tool_results.extend(
                "\n".join(_block_text(block))
                for block in blocks
                if isinstance(block, dict) and block.get("type") == "tool_result"
            )
            texts = [
                t
                for block in blocks
                if not (isinstance(block, dict) and block.get("type") == "tool_result")
                for t in _block_text(block)
            ]
            if texts:
                conversation.last_user_text = "\n".join(texts)

    cache_end = -1
    marks: list[int] = []
    for index, (_role, block) in enumerate(items):
        conversation.texts.extend(_block_text(block))
        if isinstance(block, dict) and block.get("cache_control"):
            cache_end = index
            marks.append(index)

    if last.get("role") == "user":
        results = [b for b in _blocks(last.get("content")) if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            conversation.tool_result = "\n".join(_block_text(results[-1]))

    tools = body.get("tools") or []
    conversation.tool_names = [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") == "none":
            conversation.tools_disabled = True
        elif choice.get("type") == "any" and conversation.tool_names:
            conversation.forced_tool = conversation.tool_names[0]
        elif choice.get("type") == "tool" and isinstance(choice.get("name"), str):
            conversation.forced_tool = choice["name"]

    cache = CacheInfo()
    for mark in marks:
        cache.breakpoints.append(_prefix_key(body.get("model"), items[: mark + 1]))
    if cache_end >= 0:
        cache.prefix_hash, cache.prefix_chars = cache.breakpoints[-1]
    return conversation, max_tokens, cache


def _prefix_key(model: object, prefix: list[tuple[str, object]]) -> tuple[str, int]:
    material = [
        model,
        [
            [role, {k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b]
            for role, b in prefix
        ],
    ]
    digest = hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest, sum(len(t) for _role, b in prefix for t in _block_text(b))


class PromptCache:
    """Remembers prefix hashes (bounded, least recently used evicted)."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._entries: OrderedDict[str, None] = OrderedDict()
        self._max_entries = max_entries

    def usage(self, info: CacheInfo, prompt_tokens: int) -> tuple[int, int, int]:
        """``(input_tokens, cache_creation_input_tokens, cache_read_input_tokens)``.

        The three always sum to ``prompt_tokens``. As Anthropic does, the
        longest prefix cached at any breakpoint is read; the rest up to the
        last breakpoint is written; every breakpoint's prefix is cached
        afterwards. A prefix of ``c`` characters is ``ceil(c / 4)`` tokens
        (capped at ``prompt_tokens``).
        """
        if not info.breakpoints:
            return prompt_tokens, 0, 0
        read_chars = max((chars for digest, chars in info.breakpoints if digest in self._entries), default=0)
        for digest, _chars in info.breakpoints:
            if digest in self._entries:
                self._entries.move_to_end(digest)
            else:
                self._entries[digest] = None
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        total = min(prompt_tokens, math.ceil(info.breakpoints[-1][1] / 4))
        read = min(total, math.ceil(read_chars / 4))
        return prompt_tokens - total, total - read, read

    def automatic(self, model: str, prefixes: list[tuple[str, int]], prompt_tokens: int) -> int:
        """OpenAI-style automatic caching: cached tokens of the longest prefix seen before on this model.

        ``prefixes`` are (hash, characters) of each message prefix (``openai_prefixes``). As OpenAI
        documents, nothing under 1,024 tokens is cached and hits grow in steps of 128 tokens.
        """
        scoped = [(f"auto:{model}:{digest}", chars) for digest, chars in prefixes]
        hit_chars = max((chars for key, chars in scoped if key in self._entries), default=0)
        for key, _chars in scoped:
            if key in self._entries:
                self._entries.move_to_end(key)
            else:
                self._entries[key] = None
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        cached = math.ceil(hit_chars / 4)
        if cached < AUTOMATIC_MIN_TOKENS:
            return 0
        return min(prompt_tokens, cached // AUTOMATIC_STEP_TOKENS * AUTOMATIC_STEP_TOKENS)

    def clear(self) -> None:
        self._entries.clear()


AUTOMATIC_MIN_TOKENS = 1024
AUTOMATIC_STEP_TOKENS = 128


def openai_prefixes(body: JSON) -> list[tuple[str, int]]:
    """(hash, characters) of each prefix of an OpenAI chat request: tools, then one message at a time.

    The scope includes ``prompt_cache_key`` (OpenAI routes by it), so sessions with different keys
    do not share entries.
    """
    running = hashlib.sha256(orjson.dumps([body.get("prompt_cache_key"), body.get("tools")]))
    chars = len(orjson.dumps(body.get("tools"))) if body.get("tools") else 0
    prefixes = []
    for message in body.get("messages") or []:
        encoded = orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
        running.update(encoded)
        content = message.get("content") if isinstance(message, dict) else None
        chars += len(content) if isinstance(content, str) else len(encoded)
        prefixes.append((running.copy().hexdigest(), chars))
    return prefixes


def usage_json(reply: Reply, cache_usage: tuple[int, int, int]) -> JSON:
    input_tokens, created, read = cache_usage
    return {
        "input_tokens": input_tokens,
        "output_tokens": reply.completion_tokens,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
    }


def _content(reply: Reply) -> list[JSON]:
    if reply.tool_call is not None:
        call = reply.tool_call
        return [
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": call.arguments,
            }
        ]
    return [{"type": "text", "text": reply.text}]


def message_body(
    reply: Reply,
    *,
    model: str,
    message_id: str,
    cache_usage: tuple[int, int, int],
    with_usage: bool = True,
    thinking: list[JSON] | None = None,
) -> JSON:
    body: JSON = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [*(thinking or []), *_content(reply)],
        "stop_reason": _STOP_REASONS[reply.finish],
        "stop_sequence": None,
    }
    if with_usage:
        body["usage"] = usage_json(reply, cache_usage)
    return body


def _thinking_events(blocks: list[JSON]) -> list[bytes]:
    """A thinking block streams as thinking and signature deltas; a redacted one arrives whole."""
    events: list[bytes] = []
    for index, block in enumerate(blocks):
        if block["type"] == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        else:
            start, deltas = block, []
        opened = {"type": "content_block_start", "index": index, "content_block": start}
        events.append(event("content_block_start", opened))
        events.extend(
            event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        )
        events.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def message_stream_plan(
    reply: Reply,
    *,
    model: str,
    message_id: str,
    cache_usage: tuple[int, int, int],
    with_usage: bool = True,
    thinking: list[JSON] | None = None,
) -> StreamPlan:
    """The real event sequence; ``content_block_delta`` events are the content."""
    start: JSON = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if with_usage:
        start["usage"] = {**usage_json(reply, cache_usage), "output_tokens": 1}
    if reply.tool_call is not None:
        call = reply.tool_call
        block: JSON = {
            "type": "tool_use",
            "id": call.id,
            "name": call.name,
            "input": {},
        }
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in call.pieces]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in reply.pieces]

    first = len(thinking or [])  # the answer's block follows the thinking blocks
    plan = StreamPlan(content_type=SSE_CONTENT_TYPE)
    plan.preamble = [
        event("message_start", {"type": "message_start", "message": start}),
        *_thinking_events(thinking or []),
        event(
            "content_block_start",
            {"type": "content_block_start", "index": first, "content_block": block},
        ),
        event("ping", {"type": "ping"}),
    ]
    plan.content = [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": first, "delta": delta},
        )
        for delta in deltas
    ]
    message_delta: JSON = {
        "type": "message_delta",
        "delta": {"stop_reason": _STOP_REASONS[reply.finish], "stop_sequence": None},
    }
    if with_usage:
        message_delta["usage"] = {"output_tokens": reply.completion_tokens}
    plan.trailer = [
        event("content_block_stop", {"type": "content_block_stop", "index": first}),
        event("message_delta", message_delta),
        event("message_stop", {"type": "message_stop"}),
    ]
    return plan

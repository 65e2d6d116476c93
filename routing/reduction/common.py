"""What the token-reduction transforms share: reading and rewriting message text, token estimates.

Messages are OpenAI chat messages (dicts). ``content`` is a string, a list of
parts (only ``text`` parts are touched; images and others pass unchanged) or
absent (assistant tool calls). Transforms never mutate their input: they build
new message dicts for what they change and reuse the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from providers.adapters.tokens import estimate_tokens

Message = dict[str, Any]
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators, as billing.costs counts them


def message_text(message: Message) -> str:
    """All text of one message's content (string content or text parts, joined by newlines)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def text_pieces(message: Message) -> list[str]:
    """The separately stored texts of a message: its string content, or each text part."""
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def map_text(message: Message, change: Callable[[str], str]) -> Message:
    """``message`` with ``change`` applied to each text (the same dict when nothing changed)."""
    content = message.get("content")
    if isinstance(content, str):
        new = change(content)
        return message if new == content else {**message, "content": new}
    if isinstance(content, list):
        parts: list[Any] = []
        changed = False
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                text = change(part["text"])
                if text != part["text"]:
                    part, changed = {**part, "text": text}, True
            parts.append(part)
        return {**message, "content": parts} if changed else message
    return message


def message_tokens(message: Message) -> int:
    """Estimated prompt tokens of one message: its text, tool calls and a small overhead."""
    tokens = estimate_tokens(message_text(message)) + MESSAGE_OVERHEAD_TOKENS
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        tokens += estimate_tokens(orjson.dumps(calls).decode())
    return tokens


def messages_tokens(messages: Sequence[Message]) -> int:
    """Estimated prompt tokens of a message list."""
    return sum(message_tokens(m) for m in messages)


def json_tokens(value: object) -> int:
    """Estimated tokens of a JSON value as sent (tool definitions, response formats)."""
    return estimate_tokens(orjson.dumps(value).decode()) if value else 0


def digest(text: str) -> str:
    """A short, stable content id (the first 12 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def role(message: Message) -> str:
    value = message.get("role")
    return value if isinstance(value, str) else ""


def is_system(message: Message) -> bool:
    return role(message) in ("system", "developer")

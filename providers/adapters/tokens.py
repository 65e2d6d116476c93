"""Token estimates without a tokenizer (nothing is downloaded at run time; pure functions).

Used where a provider has not reported usage yet: budget reservations, rate
limits, scoring and reductions. ``prompt_token_bound`` is a guarantee, the
others are estimates.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text and code


def tokens_for_chars(chars: int) -> int:
    """Tokens in ``chars`` characters of text, without a tokenizer (nothing is downloaded at run time)."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` (see ``tokens_for_chars``)."""
    return tokens_for_chars(len(text))


def message_text(messages: list[Any]) -> str:
    """All text in a list of chat messages (string content and text parts)."""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(parts)


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a chat request: message text plus a small per-message overhead."""
    messages = body.get("messages") or []
    return estimate_tokens(message_text(messages)) + 4 * len(messages)


PROMPT_BOUND_OVERHEAD = 64  # tokens a provider may add around the request (role markers, reply priming)


def prompt_token_bound(body: dict[str, Any]) -> int:
    """An upper bound on the prompt tokens of a request body, for budget reservations.

    Byte-level BPE tokenizers never produce more tokens than the UTF-8 bytes
    they encode, and the body's JSON holds every byte of text (messages,
    tools, prompt, input) plus structure, which covers per-message markers. A
    guarantee rather than an estimate: hard budget limits rely on it (it
    over-reserves ~4x for English text; base64 images over-reserve more).
    """
    return len(orjson.dumps(body)) + PROMPT_BOUND_OVERHEAD

"""Token estimates without a tokenizer (nothing is downloaded at run time; pure functions).

Used where a provider has not reported usage yet: budget reservations, rate
limits, scoring and reductions. ``prompt_token_bound`` is a guarantee, the
others are estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
    return estimate_tokens(message_text(messages)) + MESSAGE_OVERHEAD_TOKENS * len(messages)


MESSAGE_OVERHEAD_TOKENS = 4  # role and separators per message, as ``estimate_prompt_tokens`` counts them
SYSTEM_ROLES = ("system", "developer")  # a tuple: compared, never hashed (a role may be any JSON value)


@dataclass(frozen=True, slots=True)
class PromptFacts:
    """What the steps of a chat request read from its messages, gathered in one pass (``prompt_facts``).

    Shared by the ``auto`` scorer, the token estimates of admission, the reduction planner and the
    response cache's keys (``system_lead``: where its namespace ends), so none of them walks or
    re-joins the messages again.
    """

    messages: int = 0
    text_parts: int = 0  # string contents and text parts (what ``message_text`` joins with newlines)
    text_chars: int = 0  # characters in those texts
    longest_text: int = 0  # the longest single text (a message cap can only cut a longer one)
    message_tokens: int = 0  # per message: its text, tool calls and overhead (as reductions estimate them)
    user_turns: int = 0
    tool_results: int = 0
    last_user: str = ""  # the text of the last user message
    previous_user: str = ""  # of the one before it
    system_lead: int = 0  # leading system / developer messages (``caching.keys.split_messages``)

    @property
    def joined_chars(self) -> int:
        """Characters of ``message_text(messages)``."""
        return self.text_chars + max(0, self.text_parts - 1)

    @property
    def prompt_tokens(self) -> int:
        """``estimate_prompt_tokens`` of the body."""
        return tokens_for_chars(self.joined_chars) + MESSAGE_OVERHEAD_TOKENS * self.messages


def _texts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def prompt_facts(body: dict[str, Any]) -> PromptFacts:
    """The ``PromptFacts`` of a chat body (pure; one pass over its messages)."""
    messages = body.get("messages") or []
    parts = chars = longest = tokens = users = tools = lead = 0
    last = previous = ""
    leading = True
    for message in messages:
        if not isinstance(message, dict):
            leading = False
            continue
        texts = _texts(message.get("content"))
        lengths = [len(text) for text in texts]
        parts += len(texts)
        size = sum(lengths)
        chars += size
        longest = max(longest, *lengths) if lengths else longest
        tokens += tokens_for_chars(size + max(0, len(texts) - 1)) + MESSAGE_OVERHEAD_TOKENS
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            tokens += tokens_for_chars(len(orjson.dumps(calls).decode()))
        role = message.get("role")
        if leading and role in SYSTEM_ROLES:
            lead += 1
        else:
            leading = False
        if role == "user":
            users += 1
            previous, last = last, "\n".join(texts)
        elif role in ("tool", "function"):
            tools += 1
    return PromptFacts(
        messages=len(messages),
        text_parts=parts,
        text_chars=chars,
        longest_text=longest,
        message_tokens=tokens,
        user_turns=users,
        tool_results=tools,
        last_user=last,
        previous_user=previous,
        system_lead=lead,
    )


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


def raw_token_bound(raw_size: int) -> int:
    """``prompt_token_bound`` from the size of the raw body a request was parsed from, without re-encoding it.

    The raw JSON holds every byte of text at least as long as its UTF-8 (escapes only lengthen it)
    plus structure, so the same guarantee holds for the body parsed from it, gateway fields removed.
    """
    return raw_size + PROMPT_BOUND_OVERHEAD

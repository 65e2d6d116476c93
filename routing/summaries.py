"""Conversation summarisation (seed 000, "Context Window Bloat"): which block to summarise, and how.

When a conversation passes the tenant's ``summarize_threshold_tokens``, the
oldest units after the task message are replaced by one summary message. The
block is chosen exactly as prefix-stable trimming chooses what to drop
(``routing.reduction.trim``: coarse steps of half the threshold, never moving
back), so it stays the same while the conversation grows within a step; its
summary is made once by the cheapest tier and kept by the block's hash
(``serving.summarize``), so every later turn sends the same bytes and the
provider's prompt cache keeps working.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from routing.reduction.common import Message, message_text, messages_tokens, role
from routing.reduction.trim import STEP_SHARE, stable_candidates

FEATURE = "summarize"
SUMMARY_MAX_TOKENS = 1024
TRANSCRIPT_CHARS = 400_000  # what the summariser reads at most (the block's head and tail beyond that)
INSTRUCTION = (
    "Summarise this part of a conversation between a user and an AI coding assistant so the assistant can "
    "continue the work without it. Keep every decision, file path, identifier, command, error message, number "
    "and open question; drop pleasantries and repeated file contents. Answer with the summary only."
)


@dataclass(frozen=True, slots=True)
class Block:
    """Messages to replace by a summary: indices into the conversation, and the block's content hash."""

    indices: tuple[int, ...]
    key: str
    tokens: int


def block_to_summarise(messages: Sequence[Message], threshold_tokens: int) -> Block | None:
    """The prefix-stable block to summarise, or None when the conversation is under the threshold."""
    total = messages_tokens(messages)
    if threshold_tokens <= 0 or total <= threshold_tokens:
        return None
    candidates = stable_candidates(messages)
    if not candidates:
        return None
    step = max(int(threshold_tokens * STEP_SHARE), 1)
    target = -(-(total - threshold_tokens) // step) * step
    chosen: list[int] = []
    dropped = 0
    for unit in candidates:
        if dropped >= target:
            break
        chosen.extend(unit)
        dropped += messages_tokens([messages[i] for i in unit])
    if len(chosen) < 2:
        return None
    block = [messages[i] for i in chosen]
    key = hashlib.sha256(orjson.dumps(block, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Block(tuple(chosen), key, dropped)


def transcript(messages: Sequence[Message]) -> str:
    """The block as plain text for the summariser (tool calls and results labelled)."""
    lines = []
    for message in messages:
        text = message_text(message)
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            text += "\n[tool calls] " + orjson.dumps(calls).decode()
        lines.append(f"## {role(message) or 'message'}\n{text}")
    joined = "\n\n".join(lines)
    if len(joined) > TRANSCRIPT_CHARS:
        half = TRANSCRIPT_CHARS // 2
        joined = joined[:half] + "\n…\n" + joined[-half:]
    return joined


def summary_request(messages: Sequence[Message]) -> dict[str, Any]:
    """The chat request the cheapest tier answers with the block's summary."""
    return {
        "messages": [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": transcript(messages)}],
        "max_tokens": SUMMARY_MAX_TOKENS,
        "temperature": 0,
    }


def summary_message(summary: str, replaced: int) -> Message:
    return {
        "role": "user",
        "content": f"[gateway: summary of {replaced} earlier messages of this conversation]\n{summary.strip()}",
    }


def with_summary(messages: Sequence[Message], block: Block, summary: str) -> list[Message]:
    """The conversation with the block replaced by one summary message where it began."""
    dropped = set(block.indices)
    result: list[Message] = []
    for index, message in enumerate(messages):
        if index == block.indices[0]:
            result.append(summary_message(summary, len(block.indices)))
        if index not in dropped:
            result.append(message)
    return result

"""Per-message caps (seed 002): ``SYSTEM_MAX_CHARS``, ``USER_MSG_MAX_CHARS``, ``TOOL_RESULT_MAX_CHARS``.

A system, user or tool message longer than its cap is cut to the cap: the head
(two thirds) and the tail (one third) are kept around a visible marker that
says how much was removed and which setting did it, so neither the model nor
the user is misled. Tool results have the tightest default (a test log or a
file dump is the usual runaway), so they are cut first. Assistant messages are
never cut.

A message's capped form depends on that message alone, so the rewrite is the
same on every turn that resends it and provider prompt caches keep working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from routing.reduction.common import Message, map_text, message_tokens, role

FEATURE = "message_caps"
DEFAULT_SYSTEM_MAX_CHARS = 40_000
DEFAULT_USER_MSG_MAX_CHARS = 120_000
DEFAULT_TOOL_RESULT_MAX_CHARS = 20_000
HEAD_SHARE = 2 / 3


@dataclass(frozen=True, slots=True)
class Caps:
    """Character caps per role; 0 turns a cap off."""

    system: int = DEFAULT_SYSTEM_MAX_CHARS
    user: int = DEFAULT_USER_MSG_MAX_CHARS
    tool: int = DEFAULT_TOOL_RESULT_MAX_CHARS

    @classmethod
    def off(cls) -> Caps:
        return cls(0, 0, 0)

    @property
    def active(self) -> bool:
        return bool(self.system or self.user or self.tool)

    def limit_for(self, message: Message) -> tuple[int, str]:
        """The cap for ``message`` and the setting's name (0 when uncapped)."""
        kind = role(message)
        if kind in ("system", "developer"):
            return self.system, "SYSTEM_MAX_CHARS"
        if kind == "user":
            return self.user, "USER_MSG_MAX_CHARS"
        if kind in ("tool", "function"):
            return self.tool, "TOOL_RESULT_MAX_CHARS"
        return 0, ""


def marker(removed: int, setting: str, limit: int) -> str:
    return f"\n[gateway: {removed:,} characters cut from the middle of this message ({setting}={limit})]\n"


def truncate(text: str, limit: int, setting: str) -> str:
    """``text`` cut to about ``limit`` characters: head and tail around a marker (unchanged when it fits)."""
    if limit <= 0 or len(text) <= limit:
        return text
    head = int(limit * HEAD_SHARE)
    tail = limit - head
    removed = len(text) - head - tail
    note = marker(removed, setting, limit)
    if removed <= len(note):  # cutting would not make the message shorter
        return text
    return text[:head] + note + (text[-tail:] if tail else "")


def cap_messages(messages: Sequence[Message], caps: Caps) -> tuple[list[Message], int]:
    """Every message over its cap cut to it; returns (messages, tokens saved)."""
    if not caps.active:
        return list(messages), 0
    result: list[Message] = []
    saved = 0
    for message in messages:
        limit, setting = caps.limit_for(message)
        if not limit:
            result.append(message)
            continue
        new = map_text(message, lambda text, limit=limit, setting=setting: truncate(text, limit, setting))
        if new is not message:
            saved += message_tokens(message) - message_tokens(new)
        result.append(new)
    return result, saved

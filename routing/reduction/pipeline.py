"""The token-reduction pipeline: which transforms run, in which order, and what each saved.

Order: per-message caps first (seed 002), then trimming decides which
messages stay (sized as they will be sent, i.e. after de-duplication and
boilerplate stripping), then de-duplication and boilerplate stripping run on
what stays (so their references only ever point at messages that are still
sent), then the code-mode and diff-first instructions are added.
``tokens_saved`` holds the net prompt tokens per feature (negative for the
instructions, which add tokens).

Every rewrite is prefix-stable (issue 17): the rewritten form of a
conversation is a byte prefix of the rewritten form of the same conversation
with more turns appended, except when trimming advances one of its coarse
steps (``trim.stable_trim``). Caps and boilerplate depend on a message and
what precedes it, de-duplication looks only backwards, code mode is a fixed
system-prompt suffix, and the diff-first note is added to every user message
that asked for an edit, so it stays where it was on later turns.
``tests/routing/test_prefix_stability.py`` checks this on random sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from providers.adapters.base import Deployment
from routing.reduction import boilerplate, caps, dedupe, instructions, trim
from routing.reduction.common import Message, json_tokens, messages_tokens

DEFAULT_OUTPUT_RESERVE = 4096
WINDOW_SAFETY = 0.95  # token counts are estimates (4 characters a token): keep a margin


@dataclass(frozen=True, slots=True)
class Switches:
    """Which reductions are on (the tenant's ``RoutingPolicy``)."""

    strip_ide_boilerplate: bool = False
    dedupe_files: bool = False
    trim_context: bool = False
    diff_first_edits: bool = False
    code_mode: bool = False

    @classmethod
    def from_policy(cls, policy: object) -> Switches:
        return cls(**{name: bool(getattr(policy, name, False)) for name in cls.__slots__})

    @property
    def rewrites(self) -> bool:
        """Whether anything may change the messages regardless of their size."""
        return self.strip_ide_boilerplate or self.dedupe_files or self.diff_first_edits or self.code_mode


@dataclass(frozen=True, slots=True)
class Reduced:
    messages: list[Message]
    tokens_saved: dict[str, int] = field(default_factory=dict)
    edit: instructions.EditRequest | None = None
    trimmed_units: int = 0  # how many units trimming dropped (its step position)


def context_budget(deployment: Deployment, body: dict[str, Any]) -> int:
    """Prompt tokens the messages may take on ``deployment``: its window less output and tools."""
    window = deployment.context_window
    requested = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        reserve = requested
    else:
        reserve = min(deployment.max_output_tokens or DEFAULT_OUTPUT_RESERVE, window // 4)
    return int(window * WINDOW_SAFETY) - reserve - json_tokens(body.get("tools")) - json_tokens(body.get("functions"))


def _compact(messages: Sequence[Message], switches: Switches) -> tuple[list[Message], dict[str, int]]:
    result, saved = list(messages), {}
    if switches.dedupe_files:
        result, saved[dedupe.FEATURE] = dedupe.dedupe_files(result)
    if switches.strip_ide_boilerplate:
        result, saved[boilerplate.FEATURE] = boilerplate.strip_ide_boilerplate(result)
    return result, saved


def reduce_messages(
    messages: Sequence[Message],
    switches: Switches,
    *,
    budget_tokens: int | None = None,
    message_caps: caps.Caps | None = None,
) -> Reduced:
    """Apply the switched-on reductions to an OpenAI ``messages`` list (the input is not modified)."""
    saved_caps = 0
    if message_caps is not None and message_caps.active:
        messages, saved_caps = caps.cap_messages(messages, message_caps)
    compacted, saved = _compact(messages, switches)
    trimmed = 0
    if switches.trim_context and budget_tokens is not None and messages_tokens(compacted) > budget_tokens:
        kept, saved_trim, trimmed = trim.stable_trim(
            messages, budget_tokens, measure=lambda m: messages_tokens(_compact(m, switches)[0])
        )
        compacted, saved = _compact(kept, switches)
        saved[trim.FEATURE] = saved_trim
    saved[caps.FEATURE] = saved_caps
    edit = instructions.edit_request(compacted) if switches.diff_first_edits else None
    if switches.code_mode:
        compacted, saved[instructions.CODE_MODE] = instructions.add_code_mode(compacted)
    if switches.diff_first_edits:
        compacted, saved[instructions.DIFF_FIRST] = instructions.add_diff_first(compacted)
    return Reduced(compacted, {name: tokens for name, tokens in saved.items() if tokens}, edit, trimmed)

"""Instructions the gateway adds to a request: code mode (seed 000) and diff-first for edits (seed 002).

Code mode is a fixed addition to the system prompt (so prompt caching keeps
working across turns). Diff-first is only added to edit requests, at the end
of each user message that asked for an edit, where it is most salient and
leaves the cached system prefix alone; it stays on that message on later
turns. Both cost a few prompt tokens; they are recorded as
negative savings, and diff-first earns its saving back on the answer
(``diff_first_saving``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from providers.adapters.tokens import estimate_tokens
from routing.reduction.boilerplate import query_text
from routing.reduction.common import Message, is_system, map_text, message_text, role
from routing.reduction.dedupe import find_units
from routing.reduction.fences import find_fences

CODE_MODE = "code_mode"
DIFF_FIRST = "diff_first"

CODE_MODE_INSTRUCTION = (
    "Code mode: put all code in fenced code blocks with a language tag and close every block. "
    "Write complete, runnable, deterministic code (no placeholders, no elided parts), "
    "no trailing whitespace, and keep prose outside code blocks short."
)
DIFF_FIRST_INSTRUCTION = (
    "[gateway: this is an edit of code you have been given. Answer with a unified diff in a ```diff block "
    "(--- / +++ headers, @@ hunks, a few lines of context) covering only what changes; "
    "do not repeat unchanged files or functions unless asked for the whole file.]"
)
_EDIT_RE = re.compile(
    r"\b(fix|change|modify|edit|update|refactor|rename|replace|rewrite|remove|delete|add|insert|implement|"
    r"optimi[sz]e|convert|migrate|adjust|patch|move|extract|inline|clean ?up)\b",
    re.IGNORECASE,
)
# Verbs that ask for a change only when they open the request ("Make the error list...", "Guard against...").
_IMPERATIVE_RE = re.compile(
    r"^\W*(?:please\s+|(?:can|could|would) you\s+)?(make|guard|count|handle|support|use|wrap|split|merge|"
    r"simplify|sort|return|raise|log|catch|validate|cache|document|annotate|type|tidy|clean|drop|swap|bump)\b",
    re.IGNORECASE,
)
_DIFF_RE = re.compile(r"^(?:@@ .* @@|--- \S|\+\+\+ \S)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class EditRequest:
    """An edit of provided code: how many tokens a whole-file answer would repeat."""

    code_tokens: int


def add_code_mode(messages: Sequence[Message]) -> tuple[list[Message], int]:
    """The code-mode instruction appended to the (first) system prompt; returns (messages, -tokens added)."""
    result = list(messages)
    cost = estimate_tokens(CODE_MODE_INSTRUCTION)
    index = next((n for n, message in enumerate(result) if is_system(message)), None)
    content = result[index].get("content") if index is not None else None
    if index is not None and isinstance(content, str):
        result[index] = {**result[index], "content": f"{content.rstrip()}\n\n{CODE_MODE_INSTRUCTION}"}
    elif index is not None and isinstance(content, list):
        result[index] = {**result[index], "content": [*content, {"type": "text", "text": CODE_MODE_INSTRUCTION}]}
    else:
        result.insert(0, {"role": "system", "content": CODE_MODE_INSTRUCTION})
        cost += 4
    return result, -cost


def edit_request(messages: Sequence[Message]) -> EditRequest | None:
    """The request is an edit of provided code when its last user message asks for a change
    and code is present in the conversation (in that message or earlier)."""
    last = next((n for n in range(len(messages) - 1, -1, -1) if role(messages[n]) == "user"), None)
    if last is None:
        return None
    query = query_text(message_text(messages[last]))
    if not (_EDIT_RE.search(query) or _IMPERATIVE_RE.search(query)):
        return None
    for message in reversed(messages[: last + 1]):
        text = message_text(message)
        code = [u.body for u in find_units(text)] or [f.body for f in find_fences(text) if f.closed]
        if code:
            return EditRequest(code_tokens=estimate_tokens(max(code, key=len)))
    return None


def _with_diff_first(message: Message) -> Message:
    content = message.get("content")
    if isinstance(content, list):
        return {**message, "content": [*content, {"type": "text", "text": DIFF_FIRST_INSTRUCTION}]}
    return map_text(message, lambda text: f"{text.rstrip()}\n\n{DIFF_FIRST_INSTRUCTION}")


def add_diff_first(messages: Sequence[Message]) -> tuple[list[Message], int]:
    """The diff-first instruction appended to every user message that asked for an edit of provided code.

    Judged for each user message on the conversation up to it, so a message that got the note keeps it
    on every later turn (the rewrite is prefix-stable) and one that did not never gets it.
    """
    result = list(messages)
    added = 0
    for index, message in enumerate(messages):
        if role(message) == "user" and edit_request(messages[: index + 1]) is not None:
            result[index] = _with_diff_first(message)
            added += 1
    return result, -estimate_tokens(DIFF_FIRST_INSTRUCTION) * added


def is_diff(answer: str) -> bool:
    """Whether an answer is (or contains) a unified diff."""
    return any(f.language in ("diff", "patch") for f in find_fences(answer)) or bool(_DIFF_RE.search(answer))


def diff_first_saving(edit: EditRequest, answer: str) -> int:
    """Output tokens a diff answer saved against repeating the edited code whole (0 for other answers)."""
    if not is_diff(answer):
        return 0
    return max(0, edit.code_tokens - estimate_tokens(answer))

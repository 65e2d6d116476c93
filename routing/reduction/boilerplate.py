"""IDE boilerplate stripping: instruction blocks an IDE repeats on every turn are sent once.

Coding assistants wrap each user turn in the same instructions: Cursor's
``<user_info>`` / ``<rules>`` / ``<custom_instructions>`` blocks and its
"Please also follow these instructions..." preamble, Claude Code's
``<system-reminder>``, Cline's ``<environment_details>``, Windsurf's
``<user_rules>`` / ``<memories>``, Continue's rules. Two patterns are
recognised: a block in one of those tags, and (untagged) a paragraph of at
least ``PARAGRAPH_MIN_CHARS`` that appears in ``PARAGRAPH_MIN_MESSAGES`` or
more messages (counting only up to the message at hand, so the paragraph's
copy in its ``PARAGRAPH_MIN_MESSAGES``-th message is the first one cut). Only
exact repeats (whitespace aside) are stripped; the first occurrence is always
kept, so the model still reads every instruction once.
Code blocks and file blocks are left to de-duplication; assistant messages
are never touched.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from routing.reduction.common import Message, map_text, message_tokens, role, text_pieces
from routing.reduction.dedupe import PARSE_CACHE_SIZE
from routing.reduction.fences import find_fences

FEATURE = "strip_ide_boilerplate"
INSTRUCTION_TAGS = (
    "rules",
    "cursor_rules",
    "user_rules",
    "project_rules",
    "custom_instructions",
    "user_info",
    "system-reminder",
    "system_reminder",
    "environment_details",
    "instructions",
    "memories",
    "coding_guidelines",
    "agent_requestable_workspace_rules",
)
PARAGRAPH_MIN_CHARS = 120
PARAGRAPH_MIN_MESSAGES = 3
PLACEHOLDER = "[gateway: repeated IDE instructions omitted]"

_TAG_RE = re.compile(
    r"<(?P<tag>" + "|".join(re.escape(t) for t in INSTRUCTION_TAGS) + r")(?:\s[^>]*)?>.*?</(?P=tag)>", re.DOTALL
)
_FILE_TAG_RE = re.compile(r"<(file_content|file|document|attached_file|open_file)\b[^>]*>.*?</\1>", re.DOTALL)
_PARAGRAPH_RE = re.compile(r"\S(?:.|\n(?![ \t]*\n))*")
_BLANK_RUN_RE = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


_QUERY_RE = re.compile(r"<user_query>\s*(.*?)\s*</user_query>", re.DOTALL)


def query_text(text: str) -> str:
    """What the user actually asked in an IDE message: the ``<user_query>`` if tagged, else the text
    without instruction blocks, file blocks and code blocks."""
    tagged = _QUERY_RE.search(text)
    if tagged:
        return tagged.group(1)
    cuts = sorted([*_protected(text), *((m.start(), m.end()) for m in _TAG_RE.finditer(text))])
    pieces, cursor = [], 0
    for start, end in cuts:
        if start >= cursor:
            pieces.append(text[cursor:start])
        cursor = max(cursor, end)
    pieces.append(text[cursor:])
    return _BLANK_RUN_RE.sub("\n\n", "".join(pieces)).strip()


def _normal(text: str) -> str:
    return " ".join(text.split())


def _protected(text: str) -> list[tuple[int, int]]:
    """Spans left to de-duplication: code blocks and file blocks."""
    spans = [(f.start, f.end) for f in find_fences(text)]
    spans += [(m.start(), m.end()) for m in _FILE_TAG_RE.finditer(text)]
    return spans


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < s_end and s_start < end for s_start, s_end in spans)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _blocks(text: str) -> tuple[tuple[int, int, str, bool], ...]:
    """(start, end, normalised text, tagged) of every candidate block, in order (cached like ``find_units``)."""
    protected = _protected(text)
    blocks: list[tuple[int, int, str, bool]] = []
    for match in _TAG_RE.finditer(text):
        if not _overlaps(match.start(), match.end(), protected):
            blocks.append((match.start(), match.end(), _normal(match.group()), True))
    # Paragraphs are looked for between those spans: a preamble directly above a tag block is its own.
    cursor = 0
    for start, end in sorted([*protected, *((s, e) for s, e, _, _ in blocks), (len(text), len(text))]):
        for match in _PARAGRAPH_RE.finditer(text, cursor, max(cursor, start)):
            if len(match.group()) >= PARAGRAPH_MIN_CHARS:
                blocks.append((match.start(), match.end(), _normal(match.group()), False))
        cursor = max(cursor, end)
    return tuple(sorted(blocks))


def clear_block_cache() -> None:
    """Forget cached parses (benchmarks measuring cold runs)."""
    _blocks.cache_clear()


def _eligible(message: Message) -> bool:
    return role(message) != "assistant"


def strip_ide_boilerplate(messages: Sequence[Message]) -> tuple[list[Message], int]:
    """Remove repeated instruction blocks after their first occurrence; returns (messages, tokens saved).

    Untagged paragraphs are counted up to and including the message being rewritten, never ahead, so a
    message is rewritten the same way on every later turn (prefix stability).
    """
    paragraph_counts: Counter[str] = Counter()
    seen: set[str] = set()
    result: list[Message] = []
    saved = 0

    def strip(text: str) -> str:
        cuts: list[tuple[int, int]] = []
        for start, end, block, tagged in _blocks(text):
            if block in seen and (tagged or paragraph_counts[block] >= PARAGRAPH_MIN_MESSAGES):
                cuts.append((start, end))
            seen.add(block)
        if not cuts:
            return text
        pieces, cursor = [], 0
        for start, end in cuts:
            pieces.append(text[cursor:start])
            cursor = end
        pieces.append(text[cursor:])
        stripped = _BLANK_RUN_RE.sub("\n\n", "".join(pieces)).strip()
        return stripped or PLACEHOLDER

    for message in messages:
        if not _eligible(message):
            result.append(message)
            continue
        paragraph_counts.update(
            {block for text in text_pieces(message) for *_, block, tagged in _blocks(text) if not tagged}
        )
        new = map_text(message, strip)
        if new is not message:
            saved += message_tokens(message) - message_tokens(new)
        result.append(new)
    return result, saved

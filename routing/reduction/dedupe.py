"""File de-duplication: a file pasted again later in a conversation is sent once.

IDEs and agents resend the files they work on with every turn: as fenced code
blocks (Cursor, Continue, Aider), as ``<file_content path=...>`` blocks (Cline,
Roo) or as whole tool results (a ``read_file`` call made twice). A later copy
identical to an earlier one becomes a one-line reference to the message that
holds the earlier copy. The first copy is never touched, and the transform
only looks backwards inside the list it is given, so whatever a reference
points to is in that same list: nothing the model has not seen is lost.
(Trimming runs first, so references never point at trimmed messages.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from providers.adapters.tokens import estimate_tokens
from routing.reduction.common import Message, digest, map_text, message_tokens, role, text_pieces
from routing.reduction.fences import find_fences

FEATURE = "dedupe_files"
MIN_CHARS = 200  # below this a reference saves too little to be worth the indirection
PARSE_CACHE_SIZE = 1024  # texts whose parse is kept (they are shared with the requests, not copied)
_TAGGED_RE = re.compile(
    r"<(?P<tag>file_content|file|document|attached_file|open_file)\b(?P<attrs>[^>]*)>\n?(?P<body>.*?)\n?</(?P=tag)>",
    re.DOTALL,
)
_PATH_ATTR_RE = re.compile(r"""\b(?:path|name|file|source)\s*=\s*["']([^"']+)["']""")
_PATHLIKE_RE = re.compile(r"^[\w.\-/\\]*[/.][\w.\-/\\]*$")
REFERENCE_RE = re.compile(r"\[gateway: (?P<what>[^\]]*?) omitted, identical to the copy in message (?P<n>\d+) above")


@dataclass(frozen=True, slots=True)
class Unit:
    """A piece of one text that may repeat: ``text[start:end]`` is replaced, ``body`` is compared.

    For tagged blocks the span is the body only, so the tags (and the path) stay around the reference.
    """

    start: int
    end: int
    body: str
    label: str


def reference(label: str, message_number: int, key: str) -> str:
    """The text that stands in for a repeated copy (``message_number`` counts from 1)."""
    what = f"unchanged content of {label}" if label else "unchanged content"
    return f"[gateway: {what} omitted, identical to the copy in message {message_number} above (sha256:{key})]"


def _label_from_info(info: str) -> str:
    # ```python app/models.py   ```12:40:app/models.py   ```app/models.py
    for word in info.replace(":", " ").split()[::-1]:
        if _PATHLIKE_RE.match(word) and not word.isdigit():
            return word
    return ""


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def find_units(text: str, *, whole: bool = False) -> tuple[Unit, ...]:
    """The de-duplicable pieces of ``text``: tagged file blocks, large code blocks (or all of it).

    Cached: an IDE resends the same history with every turn, and trimming sizes
    the same messages several times.
    """
    units: list[Unit] = []
    taken: list[tuple[int, int]] = []
    for match in _TAGGED_RE.finditer(text):
        body = match.group("body")
        if len(body.strip()) >= MIN_CHARS:
            attr = _PATH_ATTR_RE.search(match.group("attrs"))
            units.append(Unit(match.start("body"), match.end("body"), body.strip(), attr.group(1) if attr else ""))
        taken.append((match.start(), match.end()))
    for fence in find_fences(text):
        if not fence.closed or len(fence.body.strip()) < MIN_CHARS:
            continue
        if any(start <= fence.start < end for start, end in taken):
            continue
        units.append(Unit(fence.start, fence.end, fence.body.strip(), _label_from_info(fence.info)))
    if not units and whole and len(text.strip()) >= MIN_CHARS:
        units.append(Unit(0, len(text), text.strip(), ""))
    return tuple(sorted(units, key=lambda unit: unit.start))


def dedupe_files(messages: Sequence[Message]) -> tuple[list[Message], int]:
    """Replace later identical copies of files by references; returns (messages, tokens saved)."""
    first_seen: dict[str, int] = {}  # body -> 1-based number of the message holding its first copy
    result: list[Message] = []
    saved = 0
    for number, message in enumerate(messages, start=1):
        whole = role(message) == "tool"
        replaced = False

        def rewrite(text: str, number: int = number, whole: bool = whole) -> str:
            nonlocal replaced
            pieces: list[str] = []
            cursor = 0
            for unit in find_units(text, whole=whole):
                earlier = first_seen.get(unit.body)
                if earlier is None:
                    first_seen[unit.body] = number
                    continue
                pieces.append(text[cursor : unit.start])
                pieces.append(reference(unit.label, earlier, digest(unit.body)))
                cursor = unit.end
                replaced = True
            if not pieces:
                return text
            pieces.append(text[cursor:])
            return "".join(pieces)

        if not any(len(piece) >= MIN_CHARS for piece in text_pieces(message)):
            result.append(message)
            continue
        new = map_text(message, rewrite)
        if replaced:
            saved += message_tokens(message) - message_tokens(new)
        result.append(new)
    return result, saved


def reference_tokens() -> int:
    """Tokens one reference costs (for benchmarks and docs)."""
    return estimate_tokens(reference("src/app/models.py", 12, "0" * 12))

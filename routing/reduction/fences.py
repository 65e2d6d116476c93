"""Markdown fenced code blocks: finding them, and whether an answer leaves one open.

Used by file de-duplication (code blocks are the usual way IDEs paste files),
code-mode output normalisation and the destructive-command guardrail. Follows
CommonMark closely enough for chat text: an opening fence is three or more
backticks or tildes indented by at most three spaces; it is closed by a line of
at least as many of the same character and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN_RE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")


@dataclass(frozen=True, slots=True)
class Fence:
    """One fenced block of ``text``: ``text[start:end]`` is the whole block, fences included."""

    start: int
    end: int
    info: str
    body: str
    closed: bool

    @property
    def language(self) -> str:
        """The first word of the info string, lower-cased (``python`` in ```` ```python app.py ````)."""
        word = self.info.split(maxsplit=1)[0] if self.info.split() else ""
        return word.split(":", 1)[0].lower()


def _is_opening(line: str) -> re.Match[str] | None:
    match = _OPEN_RE.match(line)
    if match is None:
        return None
    if match.group("fence")[0] == "`" and "`" in match.group("info"):
        return None  # a backtick fence's info string may not contain backticks
    return match


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip(" ")
    return len(line) - len(line.lstrip(" ")) <= 3 and len(stripped) >= len(fence) and set(stripped) == {fence[0]}


_FENCE_LINE_RE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<rest>[^\n]*)$", re.MULTILINE)


def find_fences(text: str) -> list[Fence]:
    """Every fenced block in ``text`` in order; an unclosed block runs to the end of the text.

    Only lines that start like a fence are looked at (one regex scan), so long
    texts with few code blocks cost little.
    """
    if "```" not in text and "~~~" not in text:
        return []
    fences: list[Fence] = []
    opened: tuple[int, str, str, int] | None = None  # start, fence, info, body start
    for match in _FENCE_LINE_RE.finditer(text):
        fence, rest = match.group("fence"), match.group("rest")
        if opened is None:
            if fence[0] == "`" and "`" in rest:
                continue  # a backtick fence's info string may not contain backticks
            opened = (match.start(), fence, rest.strip(), min(len(text), match.end() + 1))
        elif fence[0] == opened[1][0] and len(fence) >= len(opened[1]) and not rest.strip(" \r"):
            start, _, info, body_start = opened
            end = match.end() - (1 if rest.endswith("\r") else 0)
            fences.append(Fence(start, end, info, text[body_start : match.start()], closed=True))
            opened = None
    if opened is not None:
        start, _, info, body_start = opened
        fences.append(Fence(start, len(text), info, text[body_start:], closed=False))
    return fences


class FenceTracker:
    """Follows fences line by line over streamed text; ``open_fence`` is the fence left open, if any."""

    __slots__ = ("_partial", "open_fence")

    def __init__(self) -> None:
        self._partial = ""
        self.open_fence: str | None = None

    def feed(self, text: str) -> None:
        """Account for the next piece of text (any split, lines may span pieces)."""
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._line(line)

    def finish(self) -> str | None:
        """Account for the last, unterminated line; the fence still open at the end (None if balanced)."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        return self.open_fence

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if self.open_fence is None:
            match = _is_opening(line)
            if match is not None:
                self.open_fence = match.group("fence")
        elif _closes(line, self.open_fence):
            self.open_fence = None


def open_fence(text: str) -> str | None:
    """The fence ``text`` leaves unclosed at its end (e.g. ```` ``` ````), or None when balanced."""
    tracker = FenceTracker()
    tracker.feed(text)
    return tracker.finish()

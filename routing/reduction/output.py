"""Code mode on the way out (seed 000): close unbalanced code fences, strip trailing whitespace.

``normalize_answer`` rewrites a whole answer; ``StreamNormalizer`` does the
same to a stream piece by piece. Trailing whitespace can only be removed once
it is known to be trailing, so the normaliser holds back each piece's
trailing whitespace until the next piece shows what follows: spaces before a
newline are dropped, whitespace before text is released unchanged, and
whatever is left at the end of the answer is dropped. Joining the pieces and
the closing text gives exactly ``normalize_answer`` of the whole text.
"""

from __future__ import annotations

import re

from routing.reduction.fences import FenceTracker, open_fence

_SPACES_BEFORE_NEWLINE_RE = re.compile(r"[ \t]+(\r?\n)")


def _strip_lines(text: str) -> str:
    return _SPACES_BEFORE_NEWLINE_RE.sub(r"\1", text)


def normalize_answer(text: str) -> str:
    """``text`` without trailing whitespace (per line and at the end), with an open fence closed."""
    result = _strip_lines(text).rstrip()
    fence = open_fence(result)
    return f"{result}\n{fence}" if fence else result


class StreamNormalizer:
    """``normalize_answer`` for a stream: ``feed`` each piece, append ``finish()`` at the end."""

    __slots__ = ("_carry", "_fences")

    def __init__(self) -> None:
        self._carry = ""
        self._fences = FenceTracker()

    def feed(self, piece: str) -> str:
        """The normalised text to send for ``piece`` (trailing whitespace is held back)."""
        text = self._carry + piece
        body = text.rstrip()
        self._carry = text[len(body) :]
        out = _strip_lines(body)
        self._fences.feed(out)
        return out

    def finish(self) -> str:
        """The text that ends the answer: a closing fence when one is open (held whitespace is dropped)."""
        fence = self._fences.finish()
        return f"\n{fence}" if fence else ""

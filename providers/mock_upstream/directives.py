"""Per-request fault-injection directives for the mock upstream.

A directive marker looks like ``[[mock: key=value key=value ...]]`` and may
appear anywhere in the text of a request (system prompt, any message, legacy
``prompt``, embedding input). A bare key (``[[mock: tool]]``) means ``key=1``.
A marker carrying ``model=NAME`` only applies when the requested upstream model
equals ``NAME``; markers without ``model=`` apply to every model. When several
applicable markers set the same key, the last one wins. Markers are looked for
in all the request's text, history included.

Keys: ``status=NNN`` (error in the route's shape; 429/503 add ``Retry-After``),
``retry_after=S``, ``delay=S`` (before headers), ``hang=1`` (sleep an hour,
cancellable), ``drop_after=N`` (close the connection after N content chunks;
0 = right after the headers; non-streaming: no response at all), ``ttft=S``,
``tps=N``, ``words=N`` (filler words), ``tool=1``, ``refuse=1``,
``reply=TEXT`` (answer exactly TEXT, percent-encoded as by
``urllib.parse.quote(text, safe="")``: spaces, newlines, commas and ``]``
cannot appear raw in a marker), ``no_usage=1``, ``model=NAME`` (filter),
``call=NAME`` with optional ``args=JSON`` (percent-encoded like ``reply``):
ask for one call of the offered tool NAME with those arguments, once — after
any tool result in the conversation the mock answers instead (``reply`` if
given, else ``Tool result received: …``). Agents' conformance tests use it.
Unknown keys and bad values are logged and ignored.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

logger = logging.getLogger(__name__)

MARKER_RE = re.compile(r"\[\[\s*mock\s*:(?P<body>[^\]]*)\]\]", re.IGNORECASE)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_non_negative_float(value: str) -> float:
    number = float(value)
    if not number >= 0:  # negative or NaN
        raise ValueError(f"must be >= 0: {value!r}")
    return number


def _to_non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"must be >= 0: {value!r}")
    return number


def _to_text(value: str) -> str:
    text = unquote(value)
    if not text:
        raise ValueError("empty text")
    return text


def _to_json_object(value: str) -> str:
    text = unquote(value)
    if not isinstance(json.loads(text), dict):
        raise ValueError("expected a JSON object")
    return text


def _to_status(value: str) -> int:
    number = int(value)
    if not 100 <= number <= 599:
        raise ValueError(f"not an HTTP status: {value!r}")
    return number


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "status": _to_status,
    "retry_after": _to_non_negative_float,
    "delay": _to_non_negative_float,
    "hang": _to_bool,
    "drop_after": _to_non_negative_int,
    "ttft": _to_non_negative_float,
    "tps": _to_non_negative_float,
    "words": _to_non_negative_int,
    "tool": _to_bool,
    "refuse": _to_bool,
    "reply": _to_text,
    "no_usage": _to_bool,
    "call": _to_text,
    "args": _to_json_object,
}


@dataclass(frozen=True)
class Directives:
    """The merged directives that apply to one request."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    hang: bool = False
    drop_after: int | None = None
    ttft: float | None = None
    tps: float | None = None
    words: int = 0
    tool: bool = False
    refuse: bool = False
    reply: str | None = None
    no_usage: bool = False
    call: str | None = None
    args: str | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Directives:
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Only the directives that differ from the defaults (for event records)."""
        defaults = Directives()
        return {name: getattr(self, name) for name in _CONVERTERS if getattr(self, name) != getattr(defaults, name)}


def parse_marker(body: str) -> dict[str, str]:
    """Split the body of one marker into raw ``key -> value`` strings."""
    pairs: dict[str, str] = {}
    for token in re.split(r"[\s,;]+", body.strip()):
        if not token:
            continue
        key, sep, value = token.partition("=")
        pairs[key.strip().lower()] = value.strip() if sep else "1"
    return pairs


def iter_markers(text: str) -> Iterable[dict[str, str]]:
    for match in MARKER_RE.finditer(text):
        yield parse_marker(match.group("body"))


def parse_directives(texts: Iterable[str], model: str | None) -> Directives:
    """Merge every marker found in ``texts`` that applies to ``model``."""
    merged: dict[str, Any] = {}
    for text in texts:
        if not text or "[[" not in text:
            continue
        for pairs in iter_markers(text):
            only_for = pairs.pop("model", None)
            if only_for is not None and only_for != model:
                continue
            for key, raw in pairs.items():
                converter = _CONVERTERS.get(key)
                if converter is None:
                    logger.warning("mock upstream: unknown directive %r ignored", key)
                    continue
                try:
                    merged[key] = converter(raw)
                except ValueError:
                    logger.warning("mock upstream: bad value %r for directive %r", raw, key)
    return Directives.from_mapping(merged)


def strip_markers(text: str) -> str:
    """``text`` without directive markers, whitespace collapsed."""
    return " ".join(MARKER_RE.sub(" ", text).split())

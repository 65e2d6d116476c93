"""Logging helpers: the request id in a context variable, and a console format for humans.

Production logs are JSON, one object a line (``LOG_FORMAT=json``, the default).
``make run`` sets ``LOG_FORMAT=console``: one line per event, ``time level logger
message key=value ...`` with the ``extra=`` fields at the end, coloured when the
stream is a terminal (and ``NO_COLOR`` is unset).
"""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar
from typing import IO

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}
_COLOURS = {
    logging.DEBUG: "\033[2m",
    logging.INFO: "\033[32m",
    logging.WARNING: "\033[33m",
    logging.ERROR: "\033[31m",
    logging.CRITICAL: "\033[1;31m",
}
_DIM, _RESET = "\033[2m", "\033[0m"


class RequestIdFilter(logging.Filter):
    """Add the current request id to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def use_colour(stream: IO[str] | None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _flat(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class ConsoleFormatter(logging.Formatter):
    """``12:04:05 INFO  billing.usage  drained 12 records  batch=3 request_id=ab12`` on one line.

    Multi-line messages and tracebacks are folded onto the same line (``\\n`` escaped)
    so that every event stays one line that ``grep`` finds whole.
    """

    def __init__(self, colour: bool | None = None) -> None:
        super().__init__(datefmt="%H:%M:%S")
        self.colour = use_colour(sys.stderr) if colour is None else colour

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            fields["request_id"] = request_id
        tail = " ".join(f"{k}={_flat(v)}" for k, v in fields.items())
        if record.exc_info:
            tail = f"{tail} exc={_flat(self.formatException(record.exc_info))}".strip()
        level = f"{record.levelname:<7}"
        when = self.formatTime(record, self.datefmt)
        line = message.replace("\n", "\\n")
        if self.colour:
            colour = _COLOURS.get(record.levelno, "")
            return f"{_DIM}{when}{_RESET} {colour}{level}{_RESET} {_DIM}{record.name}{_RESET}  {line}" + (
                f"  {_DIM}{tail}{_RESET}" if tail else ""
            )
        return f"{when} {level} {record.name}  {line}" + (f"  {tail}" if tail else "")

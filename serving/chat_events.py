"""Re-framing the chat flow's SSE body as another API's stream events (Anthropic Messages, Responses).

The chat flow writes OpenAI ``chat.completion.chunk`` events; an inbound API that speaks another
format wraps its responder around a subclass of ``ChatEventTranslator``, which splits the body into
events and hands each parsed chunk, comment, error and the end to the subclass (pure, no I/O).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

logger = logging.getLogger(__name__)

EVENT_SEPARATOR = b"\n\n"


class ChatEventTranslator:
    """Splits chat SSE pieces into events; subclasses say what each becomes."""

    finished: bool

    def __init__(self) -> None:
        self.finished = False
        self._buffer = b""

    def feed(self, piece: bytes) -> bytes:
        """One body piece from the chat flow → the bytes to send now."""
        self._buffer += piece
        out: list[bytes] = []
        while (end := self._buffer.find(EVENT_SEPARATOR)) >= 0:
            event, self._buffer = self._buffer[:end], self._buffer[end + len(EVENT_SEPARATOR) :]
            out.extend(self._event(event))
        return b"".join(out)

    def close(self) -> bytes:
        """The end of the chat flow's body: finish the answer if ``[DONE]`` never came."""
        out: list[bytes] = []
        if self._buffer.strip():
            out.extend(self._event(self._buffer))
        self._buffer = b""
        if not self.finished:
            out.extend(self._finish())
        return b"".join(out)

    def _event(self, event: bytes) -> list[bytes]:
        out: list[bytes] = []
        data: list[bytes] = []
        for line in event.splitlines():
            if line.startswith(b":"):
                out.extend(self._comment(line))
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if data:
            out.extend(self._data(b"\n".join(data)))
        return out

    def _data(self, raw: bytes) -> list[bytes]:
        if self.finished:
            return []
        if raw == b"[DONE]":
            return self._finish()
        try:
            chunk = orjson.loads(raw)
        except orjson.JSONDecodeError:
            logger.warning("skipping a stream event that is not JSON")
            return []
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk:
            return self._error(chunk["error"])
        return self._chunk(chunk)

    # ----------------------------------------------------------------- what subclasses decide

    def _comment(self, line: bytes) -> list[bytes]:
        """An SSE comment line (keep-alive, the cost trailer): passed on as is unless overridden."""
        return [line + EVENT_SEPARATOR]

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        raise NotImplementedError

    def _error(self, error: object) -> list[bytes]:
        raise NotImplementedError

    def _finish(self) -> list[bytes]:
        raise NotImplementedError

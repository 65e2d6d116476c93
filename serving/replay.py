"""Cached answers as streams and streams as cacheable answers (pure, apart from the recorder's state).

``replay_events`` turns a stored ``chat.completion`` into the SSE events an
OpenAI streaming client expects (role, content pieces, tool calls, finish,
optional usage). ``StreamRecorder`` reads the SSE a client was sent (through
``WatchedResponder``) and assembles the equivalent ``chat.completion`` for
storing once the stream ended.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson

from serving.exchange import Responder

PIECE_CHARS = 64  # content per replayed chunk (split at whitespace)
COMPLETE_FINISHES = frozenset({"stop", "length", "tool_calls", "function_call"})
HELD_BYTES = 256 * 1024  # SSE bytes a recorder holds before reading them
# The payload of an SSE ``data: `` line (blanks after it stay: JSON allows them, ``[DONE]`` is stripped).
DATA_LINE = re.compile(rb"^data: (.*)$", re.MULTILINE)


def split_text(text: str, size: int = PIECE_CHARS) -> list[str]:
    """``text`` in pieces of about ``size`` characters, cut after whitespace; joined they give ``text``."""
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start, end)
            end = cut + 1 if cut > start else end
        pieces.append(text[start:end])
        start = end
    return pieces


def replay_events(response: dict[str, Any], *, chunk_id: str, include_usage: bool) -> Iterator[bytes]:
    """The ``data:`` payloads (JSON) that stream ``response`` (without ``[DONE]``)."""
    created = int(time.time())
    model = response.get("model", "")
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return orjson.dumps(
            {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
        )

    yield event({"role": "assistant", "content": ""})
    for piece in split_text(message.get("content") or ""):
        yield event({"content": piece})
    for index, call in enumerate(message.get("tool_calls") or []):
        yield event({"tool_calls": [{"index": index, **call}]})
    yield event({}, choice.get("finish_reason") or "stop")
    usage = response.get("usage")
    if include_usage and isinstance(usage, dict):
        yield orjson.dumps(
            {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
        )


class StreamRecorder:
    """Assembles the ``chat.completion`` a relayed stream amounts to, from the SSE the client was sent.

    Watching the bytes that go out (not the upstream chunks) means the stored
    answer is exactly what the client got, after whatever rewrote the stream
    (code mode, guardrail annotations). The bytes are held and read in large
    steps (``HELD_BYTES``, and by ``completion`` after the answer was sent), so
    relaying an event costs no parse of its own here.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._body: list[bytes] = []
        self._held = 0  # bytes in ``_body``
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model = ""
        self.done = False
        self.failed = False

    def feed(self, body: bytes) -> None:
        """Some bytes of the SSE body (events may be split across calls)."""
        self._body.append(body)
        self._held += len(body)
        if self._held > HELD_BYTES:  # a long stream is read as it goes, in large steps
            self._read_events()

    def _read_events(self) -> None:
        """Observe every complete event held so far; an incomplete last one stays.

        One pass: the ``data:`` payloads are found by one regular expression and decoded by one
        orjson call, as the elements of a JSON array (a payload that is not JSON fails the answer).
        """
        body = b"".join(self._body)
        end = body.rfind(b"\n\n") + 2
        if end < 2:
            self._body, self._held = [body], len(body)
            return
        self._body, self._held = [body[end:]], len(body) - end
        lines = DATA_LINE.findall(body, 0, end)
        payloads = [payload for payload in lines if payload.strip() != b"[DONE]"]
        self.done = self.done or len(payloads) != len(lines)
        if not payloads:
            return
        try:
            events = orjson.loads(b"[" + b",".join(payloads) + b"]")
        except orjson.JSONDecodeError:
            self.failed = True
            return
        if len(events) != len(payloads):  # a payload like ``1,2`` reads as two elements, ``  `` as none
            self.failed = True
            return
        for data in events:
            self._observe(data)

    def _observe(self, data: Any) -> None:
        if not isinstance(data, dict) or "error" in data:
            self.failed = True
            return
        self.model = self.model or str(data.get("model") or "")
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.text.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(
                    call.get("index", 0), {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def completion(self) -> dict[str, Any] | None:
        """The assembled answer; None unless the stream ended normally with ``[DONE]``."""
        self._read_events()
        if not self.done or self.failed or self.finish_reason not in COMPLETE_FINISHES:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        answer: dict[str, Any] = {
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        }
        if self.usage is not None:
            answer["usage"] = self.usage
        return answer


class WatchedResponder:
    """A ``Responder`` that shows every body piece to a ``StreamRecorder`` on its way out."""

    def __init__(self, inner: Responder, recorder: StreamRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    async def send_headers(self, *, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await self.inner.send_headers(status=status, headers=headers)

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        self.recorder.feed(body)
        await self.inner.send_body(body, more_body=more_body)

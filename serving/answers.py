"""What happens to an answer between the upstream and the client: code mode, guardrail, diff-first savings.

Whole answers (``finish_body``) are rewritten before they are sent. Streams go
through an ``AnswerStream`` inside ``relay_stream``: code mode rewrites content
deltas as they pass (``routing.reduction.output``), the guardrail's annotate
mode watches content and tool-call arguments and, since the headers are long
gone by the end, reports as an SSE comment ``: x-gateway-guardrail=...`` (and
on the usage event). The guardrail's block mode cannot let anything through
before the whole answer was checked, so in block mode streams are held
(``hold``), checked, and then replayed or replaced by a refusal (``release``):
the client gets no incremental bytes. Cascades hold the cheap answer the same
way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from providers.adapters.base import Deployment, StreamChunk, Usage, chunk_text, unpack
from routing import guardrail
from routing.quality import Answer
from routing.reduction.instructions import DIFF_FIRST, diff_first_saving
from routing.reduction.output import StreamNormalizer, normalize_answer

if TYPE_CHECKING:
    from serving.chat_plan import ChatPlan
    from serving.exchange import Exchange

logger = logging.getLogger(__name__)


# -- the guardrail's verdict ----------------------------------------------------------------------


def apply_guardrail(exchange: Exchange, plan: ChatPlan, text: str, tool_arguments: Iterable[str]) -> bool:
    """Check an answer against the tenant's guardrail; record and log a finding. True if it must be blocked."""
    if not plan.guarded:
        return False
    found = guardrail.scan_answer(text, list(tool_arguments), plan.guard_commands)
    result = guardrail.decide(plan.guard_mode, found)
    if not result.action:
        return False
    exchange.guardrail = result.action
    exchange.route_reason = {**exchange.route_reason, "guardrail": {"action": result.action, "commands": found}}
    exchange.extra_headers[guardrail.HEADER] = result.header
    logger.warning(
        "guardrail %s an answer with %s",
        result.action,
        ", ".join(found),
        extra={"request_id": exchange.request_id, "guardrail": result.action, "commands": list(found)},
    )
    return result.action == guardrail.BLOCKED


def _note_diff_first(exchange: Exchange, plan: ChatPlan, text: str) -> None:
    if plan.edit is not None:
        saved = diff_first_saving(plan.edit, text)
        if saved:
            exchange.tokens_saved[DIFF_FIRST] = exchange.tokens_saved.get(DIFF_FIRST, 0) + saved


# -- whole answers ------------------------------------------------------------------------------


def finish_body(exchange: Exchange, plan: ChatPlan, body: bytes) -> bytes:
    """The ``chat.completion`` JSON to send: normalised in code mode, blocked or annotated by the guardrail."""
    if not (plan.code_mode or plan.guarded or plan.edit is not None):
        return body
    try:
        data = orjson.loads(body)
        choice = data["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return body
    text = message.get("content")
    if plan.code_mode and isinstance(text, str):
        message["content"] = text = normalize_answer(text)
    text = text if isinstance(text, str) else ""
    calls = message.get("tool_calls") or []
    arguments = [(c.get("function") or {}).get("arguments") or "" for c in calls if isinstance(c, dict)]
    if apply_guardrail(exchange, plan, text, arguments):
        choice["message"] = {
            "role": "assistant",
            "content": guardrail.refusal(exchange.route_reason["guardrail"]["commands"]),
        }
        choice["finish_reason"] = "content_filter"
    else:
        _note_diff_first(exchange, plan, text)
    return orjson.dumps(data)


def completion_answer(body: bytes, text: str, finish_reason: str | None) -> Answer:
    """A whole answer as the quality checks see it."""
    try:
        calls = bool(orjson.loads(body)["choices"][0]["message"].get("tool_calls"))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        calls = False
    return Answer(text=text, finish_reason=finish_reason, tool_calls=calls)


# -- streams ------------------------------------------------------------------------------------


def _content_deltas(data: dict[str, Any]) -> tuple[dict[str, Any] | None, list[tuple[int, str]]]:
    """The first choice's delta and its (index, arguments piece) tool-call deltas."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None, []
    delta = choices[0].get("delta")
    if not isinstance(delta, dict):
        return None, []
    pieces = []
    for call in delta.get("tool_calls") or []:
        if isinstance(call, dict):
            arguments = (call.get("function") or {}).get("arguments")
            if isinstance(arguments, str):
                pieces.append((int(call.get("index") or 0), arguments))
    return delta, pieces


class AnswerStream:
    """Rewrites and watches a relayed stream's chunks (code mode, guardrail annotate, diff-first)."""

    def __init__(self, exchange: Exchange, plan: ChatPlan, *, checked: bool = False) -> None:
        self.exchange = exchange
        self.plan = plan
        self.watch = plan.guarded and not checked  # a held answer was checked before it is replayed
        self.keep_text = self.watch or plan.edit is not None
        self.normalizer = StreamNormalizer() if plan.code_mode else None
        self.text: list[str] = []
        self.arguments: dict[int, list[str]] = {}
        self.finished = False
        self.envelope: dict[str, Any] = {}

    @property
    def active(self) -> bool:
        return self.normalizer is not None or self.keep_text

    def feed(self, chunk: StreamChunk) -> list[bytes]:
        """The data payloads to send for one upstream chunk (usually the chunk, maybe rewritten)."""
        assert chunk.data is not None
        text = chunk_text(chunk)
        if self.keep_text and text:
            self.text.append(text)
        rewrite = self.normalizer is not None and (text or chunk.finish_reason)
        watch_calls = self.watch and b'"tool_calls"' in chunk.data
        if not rewrite and not watch_calls:
            return [chunk.data]
        data = orjson.loads(chunk.data)
        delta, pieces = _content_deltas(data)
        for index, piece in pieces:
            self.arguments.setdefault(index, []).append(piece)
        if not rewrite or delta is None or self.normalizer is None:
            return [chunk.data]
        self.envelope = {k: data[k] for k in ("id", "object", "created", "model") if k in data}
        out = self.normalizer.feed(delta["content"]) if isinstance(delta.get("content"), str) else ""
        if chunk.finish_reason:
            out += self.normalizer.finish()
            self.finished = True
        if "content" in delta or out:
            delta["content"] = out
        return [orjson.dumps(data)]

    def tail(self) -> list[bytes]:
        """SSE lines that end the answer, before the cost comment: a closing fence, the guardrail note."""
        lines: list[bytes] = []
        if self.normalizer is not None and not self.finished and (closing := self.normalizer.finish()):
            self.text.append(closing)
            chunk = {**self.envelope, "choices": [{"index": 0, "delta": {"content": closing}, "finish_reason": None}]}
            lines.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        text = "".join(self.text)
        if self.watch:
            arguments = ["".join(pieces) for pieces in self.arguments.values()]
            apply_guardrail(self.exchange, self.plan, text, arguments)
            if header := self.exchange.extra_headers.get(guardrail.HEADER):
                lines.append(f": x-gateway-guardrail={header}\n\n".encode())
        _note_diff_first(self.exchange, self.plan, text)
        return lines


def stream_filter(exchange: Exchange, plan: ChatPlan, *, checked: bool = False) -> AnswerStream | None:
    """The filter a relayed stream needs under the plan (None: forward chunks untouched)."""
    answer = AnswerStream(exchange, plan, checked=checked)
    return answer if answer.active else None


@dataclass(slots=True)
class HeldStream:
    """A whole streamed answer, consumed without sending anything (cascade, guardrail block mode)."""

    deployment: Deployment
    chunks: list[StreamChunk] = field(default_factory=list)
    text: str = ""
    tool_arguments: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    seconds: float = 0.0

    def answer(self) -> Answer:
        return Answer(self.text, self.finish_reason, tool_calls=bool(self.tool_arguments))


async def hold(deployment: Deployment, chunks: AsyncIterator[StreamChunk]) -> HeldStream:
    """Consume a stream into a ``HeldStream`` (errors propagate, so failover still applies)."""
    held = HeldStream(deployment)
    started = time.monotonic()
    text: list[str] = []
    arguments: dict[int, list[str]] = {}
    try:
        async for item in chunks:
            for chunk in unpack(item):  # a run's events one by one: each is checked and replayed alone
                held.chunks.append(chunk)
                text.append(chunk_text(chunk))
                held.finish_reason = chunk.finish_reason or held.finish_reason
                held.usage = chunk.usage or held.usage
                if chunk.data is not None and b'"tool_calls"' in chunk.data:
                    for index, piece in _content_deltas(orjson.loads(chunk.data))[1]:
                        arguments.setdefault(index, []).append(piece)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    held.text = "".join(text)
    held.tool_arguments = ["".join(pieces) for pieces in arguments.values()]
    held.seconds = time.monotonic() - started
    return held


async def _replay(chunks: Iterable[StreamChunk]) -> AsyncIterator[StreamChunk]:
    for chunk in chunks:
        yield chunk


def _refusal_chunks(held: HeldStream, text: str) -> list[StreamChunk]:
    first = next((c.data for c in held.chunks if c.data is not None and not c.usage_only), None)
    envelope = (
        {k: v for k, v in orjson.loads(first).items() if k in ("id", "object", "created", "model")} if first else {}
    )
    envelope.setdefault("object", "chat.completion.chunk")
    content = {
        **envelope,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
    }
    finish = {**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]}
    chunks = [
        StreamChunk(data=orjson.dumps(content), text=text),
        StreamChunk(data=orjson.dumps(finish), finish_reason="content_filter"),
    ]
    usage_chunks = [c for c in held.chunks if c.usage_only]
    return chunks + (usage_chunks or [StreamChunk(data=None, usage=held.usage)])


def release(exchange: Exchange, plan: ChatPlan, held: HeldStream) -> AsyncIterator[StreamChunk]:
    """The chunks to relay for a held answer: as they came, or a refusal if the guardrail blocks it."""
    if apply_guardrail(exchange, plan, held.text, held.tool_arguments):
        commands = exchange.route_reason["guardrail"]["commands"]
        return _replay(_refusal_chunks(held, guardrail.refusal(commands)))
    return _replay(held.chunks)

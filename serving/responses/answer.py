"""Chat answers → Responses API answers (pure: whole responses and the SSE event sequence).

``response_from_completion`` turns an OpenAI ``chat.completion`` into a
``response`` object. :class:`ResponsesStream` takes the SSE pieces the chat flow
forwards (``data: {chunk}``, ``: keep-alive``, ``: x-gateway-cost-usd=``,
``data: [DONE]``, a ``data: {"error": ...}`` failure; a piece may hold several
events or end mid-event) and returns the Responses events: ``response.created``,
``response.in_progress``, per output item ``response.output_item.added`` … ``done``
(text: ``response.content_part.added``, ``response.output_text.delta`` / ``done``,
``response.content_part.done``; tool calls: ``response.function_call_arguments.delta``
/ ``done`` or ``response.custom_tool_call_input.delta`` / ``done``; reasoning
text a chat upstream streams as ``reasoning_content``:
``response.reasoning_summary_part.added``, ``response.reasoning_summary_text.delta``
/ ``done``, ``response.reasoning_summary_part.done``), then ``response.completed``
(or ``response.incomplete`` when the output cap was hit) with usage, or
``response.failed`` when the stream fails. Comments pass through unchanged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from serving.chat_events import EVENT_SEPARATOR, ChatEventTranslator
from serving.responses.request import CUSTOM_INPUT, ResponsesContext

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _object(value: object) -> JSON:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def response_usage(usage: object) -> JSON | None:
    """OpenAI chat ``usage`` → Responses ``usage`` (None when absent)."""
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    prompt, completion = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    cached = _int(_object(usage.get("prompt_tokens_details")).get("cached_tokens"))
    reasoning = _int(_object(usage.get("completion_tokens_details")).get("reasoning_tokens"))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def response_object(
    context: ResponsesContext,
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[JSON],
    usage: JSON | None = None,
    error: JSON | None = None,
    incomplete_reason: str | None = None,
) -> JSON:
    """A ``response`` object echoing the request's settings, as OpenAI returns it."""
    echo = context.echo
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "model": context.model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls") is not False,
        "previous_response_id": echo.get("previous_response_id"),
        "reasoning": echo.get("reasoning") or {"effort": None, "summary": None},
        "store": context.store,
        "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice") or "auto",
        "tools": echo.get("tools") or [],
        "top_p": echo.get("top_p"),
        "truncation": echo.get("truncation") or "disabled",
        "usage": usage,
        "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
        "prompt_cache_key": echo.get("prompt_cache_key"),
    }


def message_item(item_id: str, text: str, *, status: str = "completed") -> JSON:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if text or status == "completed"
        else [],
    }


def reasoning_item(item_id: str, text: str) -> JSON:
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": text}] if text else []}


def call_item(
    context: ResponsesContext, item_id: str, call_id: str, flat_name: str, arguments: str, *, status: str = "completed"
) -> JSON:
    """A chat tool call → ``function_call`` (namespace restored) or ``custom_tool_call``."""
    namespace, name = context.tools.namespaced.get(flat_name, (None, flat_name))
    if flat_name in context.tools.custom:
        item: JSON = {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments) if status == "completed" else "",
            "status": status,
        }
    else:
        item = {
            "type": "function_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": status,
        }
    if namespace:
        item["namespace"] = namespace
    return item


def custom_input(arguments: str) -> str:
    """The raw input of a custom tool call from the ``{"input": ...}`` arguments the upstream wrote."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(CUSTOM_INPUT), str):
        return str(value[CUSTOM_INPUT])
    return arguments


def _reasoning_text(message: JSON) -> str:
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _message_text(message: JSON) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    text = content if isinstance(content, str) else ""
    refusal = message.get("refusal")
    return text or (refusal if isinstance(refusal, str) else "")


def response_from_completion(data: object, context: ResponsesContext, *, response_id: str, created_at: int) -> JSON:
    """An OpenAI ``chat.completion`` → a ``response`` object."""
    choices = _object(data).get("choices")
    choice = _object(choices[0]) if isinstance(choices, list) and choices else {}
    message = _object(choice.get("message"))
    suffix = response_id.removeprefix("resp_")
    output: list[JSON] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        output.append(reasoning_item(f"rs_{suffix}", reasoning))
    text = _message_text(message)
    if text:
        output.append(message_item(f"msg_{suffix}", text))
    for index, call in enumerate(message.get("tool_calls") or []):
        function = _object(_object(call).get("function"))
        call_id = str(_object(call).get("id") or f"call_{suffix}_{index}")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments or {}).decode()
        output.append(call_item(context, f"fc_{suffix}_{index}", call_id, str(function.get("name") or ""), arguments))
    reason = INCOMPLETE_REASONS.get(str(choice.get("finish_reason")))
    return response_object(
        context,
        response_id=response_id,
        created_at=created_at,
        status="incomplete" if reason else "completed",
        output=output,
        usage=response_usage(_object(data).get("usage")),
        incomplete_reason=reason,
    )


def sse(payload: JSON) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + EVENT_SEPARATOR


class _OpenItem:
    """The output item being streamed."""

    def __init__(self, index: int, item: JSON) -> None:
        self.index = index
        self.item = item
        self.text: list[str] = []


class ResponsesStream(ChatEventTranslator):
    """OpenAI chat chunk SSE pieces → Responses stream events (pure)."""

    def __init__(self, context: ResponsesContext, *, response_id: str, created_at: int | None = None) -> None:
        self.context = context
        self.response_id = response_id
        self.created_at = created_at if created_at is not None else int(time.time())
        self.suffix = response_id.removeprefix("resp_")
        super().__init__()
        self.started = False
        self.final: JSON | None = None  # the last response object sent (completed, incomplete or failed)
        self.output: list[JSON] = []
        self.usage: JSON | None = None
        self.finish_reason: str | None = None
        self._sequence = 0
        self._open: _OpenItem | None = None
        self._calls: dict[int, _OpenItem] = {}  # chat tool call index → its item

    def fail(self, code: str, message: str) -> bytes:
        """The events that end a stream which failed after it started."""
        if self.finished:
            return b""
        out = self._start()
        self.finished = True
        self.final = self._response("failed", error={"code": code or "server_error", "message": message})
        out.append(self._emit({"type": "response.failed", "response": self.final}))
        return b"".join(out)

    def _error(self, error: object) -> list[bytes]:
        error = _object(error)
        return [self.fail(str(error.get("code") or "server_error"), str(error.get("message") or "The stream failed."))]

    def _chunk(self, chunk: JSON) -> list[bytes]:
        out = self._start()
        usage = response_usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            out.extend(self._choice(choices[0]))
        return out

    def _choice(self, choice: JSON) -> list[bytes]:
        out: list[bytes] = []
        delta = _object(choice.get("delta"))
        reasoning = _reasoning_text(delta)
        if reasoning:
            out.extend(self._reasoning(reasoning))
        for name in ("content", "refusal"):
            text = delta.get(name)
            if isinstance(text, str) and text:
                out.extend(self._text(text))
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                out.extend(self._tool_call(call))
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self.finish_reason = finish
        return out

    # ----------------------------------------------------------------- output

    def _emit(self, payload: JSON) -> bytes:
        payload["sequence_number"] = self._sequence
        self._sequence += 1
        return sse(payload)

    def _response(self, status: str, *, error: JSON | None = None, incomplete_reason: str | None = None) -> JSON:
        return response_object(
            self.context,
            response_id=self.response_id,
            created_at=self.created_at,
            status=status,
            output=list(self.output),
            usage=self.usage,
            error=error,
            incomplete_reason=incomplete_reason,
        )

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        response = self._response("in_progress")
        return [
            self._emit({"type": "response.created", "response": response}),
            self._emit({"type": "response.in_progress", "response": response}),
        ]

    def _open_item(self, item: JSON) -> list[bytes]:
        out = self._close_item()
        self._open = _OpenItem(len(self.output), item)
        self.output.append(item)
        out.append(
            self._emit({"type": "response.output_item.added", "output_index": self._open.index, "item": dict(item)})
        )
        return out

    def _close_item(self) -> list[bytes]:
        current, self._open = self._open, None
        if current is None:
            return []
        item, index = current.item, current.index
        text = "".join(current.text)
        out: list[bytes] = []
        if item["type"] == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out.append(
                self._emit(
                    {
                        "type": "response.output_text.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "text": text,
                        "logprobs": [],
                    }
                )
            )
            out.append(
                self._emit(
                    {
                        "type": "response.content_part.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "part": part,
                    }
                )
            )
            item = message_item(item["id"], text)
        elif item["type"] == "reasoning":
            part = {"type": "summary_text", "text": text}
            out.append(
                self._emit(
                    {
                        "type": "response.reasoning_summary_text.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "summary_index": 0,
                        "text": text,
                    }
                )
            )
            out.append(
                self._emit(
                    {
                        "type": "response.reasoning_summary_part.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "summary_index": 0,
                        "part": part,
                    }
                )
            )
            item = reasoning_item(item["id"], text)
        else:
            item = self._finished_call(item, text)
            if item["type"] == "custom_tool_call":
                out.append(
                    self._emit(
                        {
                            "type": "response.custom_tool_call_input.done",
                            "item_id": item["id"],
                            "output_index": index,
                            "input": item["input"],
                        }
                    )
                )
            else:
                out.append(
                    self._emit(
                        {
                            "type": "response.function_call_arguments.done",
                            "item_id": item["id"],
                            "output_index": index,
                            "name": item["name"],
                            "arguments": text,
                        }
                    )
                )
        self.output[index] = item
        out.append(self._emit({"type": "response.output_item.done", "output_index": index, "item": item}))
        return out

    def _finished_call(self, item: JSON, arguments: str) -> JSON:
        flat = item["_flat"]
        return call_item(self.context, item["id"], item["call_id"], flat, arguments or "{}")

    def _reasoning(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or self._open.item["type"] != "reasoning":
            out.extend(self._open_item(reasoning_item(f"rs_{self.suffix}_{len(self.output)}", "")))
            assert self._open is not None
            out.append(
                self._emit(
                    {
                        "type": "response.reasoning_summary_part.added",
                        "item_id": self._open.item["id"],
                        "output_index": self._open.index,
                        "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""},
                    }
                )
            )
        assert self._open is not None
        self._open.text.append(text)
        out.append(
            self._emit(
                {
                    "type": "response.reasoning_summary_text.delta",
                    "item_id": self._open.item["id"],
                    "output_index": self._open.index,
                    "summary_index": 0,
                    "delta": text,
                }
            )
        )
        return out

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or self._open.item["type"] != "message":
            out.extend(self._open_item(message_item(f"msg_{self.suffix}_{len(self.output)}", "", status="in_progress")))
            assert self._open is not None
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(
                self._emit(
                    {
                        "type": "response.content_part.added",
                        "item_id": self._open.item["id"],
                        "output_index": self._open.index,
                        "content_index": 0,
                        "part": part,
                    }
                )
            )
        assert self._open is not None
        self._open.text.append(text)
        out.append(
            self._emit(
                {
                    "type": "response.output_text.delta",
                    "item_id": self._open.item["id"],
                    "output_index": self._open.index,
                    "content_index": 0,
                    "delta": text,
                    "logprobs": [],
                }
            )
        )
        return out

    def _tool_call(self, call: JSON) -> list[bytes]:
        out: list[bytes] = []
        index = call.get("index")
        position = index if isinstance(index, int) and not isinstance(index, bool) else 0
        function = _object(call.get("function"))
        current = self._calls.get(position)
        if current is None:
            call_id = (
                call.get("id")
                if isinstance(call.get("id"), str) and call.get("id")
                else f"call_{self.suffix}_{position}"
            )
            flat = str(function.get("name") or "")
            item = call_item(
                self.context, f"fc_{self.suffix}_{len(self.output)}", str(call_id), flat, "", status="in_progress"
            )
            out.extend(self._open_item(item))
            assert self._open is not None
            self._open.item = {**item, "_flat": flat}
            added = dict(item)
            self.output[self._open.index] = added
            current = self._calls[position] = self._open
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            if current is not self._open:
                logger.warning("interleaved tool call deltas; appending to the earlier call")
            current.text.append(arguments)
            kind = (
                "response.custom_tool_call_input.delta"
                if current.item["type"] == "custom_tool_call"
                else "response.function_call_arguments.delta"
            )
            if kind == "response.function_call_arguments.delta":
                out.append(
                    self._emit(
                        {"type": kind, "item_id": current.item["id"], "output_index": current.index, "delta": arguments}
                    )
                )
        return out

    def _finish(self) -> list[bytes]:
        out = [*self._start(), *self._close_item()]
        self.finished = True
        reason = INCOMPLETE_REASONS.get(str(self.finish_reason)) if self.finish_reason else None
        if reason:
            self.final = self._response("incomplete", incomplete_reason=reason)
            out.append(self._emit({"type": "response.incomplete", "response": self.final}))
        else:
            self.final = self._response("completed")
            out.append(self._emit({"type": "response.completed", "response": self.final}))
        return out

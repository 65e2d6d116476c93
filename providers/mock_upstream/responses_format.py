"""OpenAI Responses API wire format (``POST /v1/responses``), for pass-through tests.

Input items become a :class:`Conversation` (messages with string or
``input_text`` content, ``function_call_output`` as tool results); the reply
is a ``response`` object or the stream of ``response.*`` events with usage on
``response.completed``. Like OpenAI, the mock refuses ``previous_response_id``
it never issued (it stores nothing), and a request with ``reasoning`` gets a
``reasoning`` item first whose ``encrypted_content`` must come back unchanged:
one that was altered is a 400.
"""

from __future__ import annotations

import time
from typing import Any

from providers.mock_upstream.anthropic_format import event, redacted_data, sign
from providers.mock_upstream.openai_format import content_texts, parse_tool_choice
from providers.mock_upstream.replies import BadRequest, Conversation, Reply, StreamPlan, new_id

JSON = dict[str, Any]
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


def parse_request(body: JSON) -> tuple[Conversation, int | None]:
    """``input`` (and ``instructions``) as a conversation; ``max_output_tokens``."""
    if body.get("previous_response_id") is not None:
        raise BadRequest("Previous response with id not found (the mock stores nothing).", "previous_response_id")
    raw = body.get("input")
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise BadRequest("input: a string or a non-empty array of items is required", "input")
    conversation = Conversation()
    if isinstance(body.get("instructions"), str):
        conversation.texts.append(body["instructions"])
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"input[{i}]: expected an object", f"input[{i}]")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            texts = content_texts(item.get("content"))
            conversation.texts.extend(texts)
            if item.get("role") == "user" and texts:
                conversation.last_user_text = "\n".join(texts)
                conversation.tool_result = None
        elif kind == "function_call_output":
            output = item.get("output")
            text = "\n".join(content_texts(output))
            conversation.texts.append(text)
            conversation.tool_results.append(text)
            conversation.tool_result = text
        elif kind == "reasoning":
            token, _, signature = str(item.get("encrypted_content") or "").partition(".")
            if not token or signature != sign(token):
                raise BadRequest(f"input[{i}]: encrypted_content could not be verified", f"input[{i}]")
        elif kind != "function_call":
            raise BadRequest(f"input[{i}]: unsupported item type {kind!r}", f"input[{i}]")
    tools = body.get("tools") or []
    conversation.tool_names = [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
    parse_tool_choice(body.get("tool_choice"), conversation.tool_names, conversation)
    max_tokens = body.get("max_output_tokens")
    return conversation, max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None


def _output(reply: Reply, reasoning: bool) -> list[JSON]:
    items: list[JSON] = []
    if reasoning:
        items.append({"type": "reasoning", "id": new_id("rs_"), "summary": [], "encrypted_content": redacted_data()})
    if reply.tool_call is not None:
        call = reply.tool_call
        items.append(
            {
                "type": "function_call",
                "id": new_id("fc_"),
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments_json,
                "status": "completed",
            }
        )
    else:
        part = {"type": "output_text", "text": reply.text, "annotations": []}
        items.append(
            {"type": "message", "id": new_id("msg_"), "status": "completed", "role": "assistant", "content": [part]}
        )
    return items


def _usage(reply: Reply, with_usage: bool) -> JSON | None:
    if not with_usage:
        return None
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_prompt_tokens},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.total_tokens,
    }


def response_body(body: JSON, reply: Reply, *, model: str, output: list[JSON], status: str, usage: JSON | None) -> JSON:
    incomplete = reply.finish == "length" and status != "in_progress"
    return {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if incomplete else status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "store": body.get("store", True),
        "temperature": body.get("temperature"),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "usage": usage,
    }


def whole(body: JSON, reply: Reply, *, model: str, with_usage: bool) -> JSON:
    output = _output(reply, isinstance(body.get("reasoning"), dict))
    return response_body(body, reply, model=model, output=output, status="completed", usage=_usage(reply, with_usage))


class _Events:
    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, payload: JSON) -> bytes:
        payload["sequence_number"] = self.sequence
        self.sequence += 1
        return event(str(payload["type"]), payload)


def stream_plan(body: JSON, reply: Reply, *, model: str, with_usage: bool) -> StreamPlan:
    """``response.created`` … ``response.completed``; the text or argument deltas are the content."""
    emit = _Events()
    output = _output(reply, isinstance(body.get("reasoning"), dict))
    started = response_body(body, reply, model=model, output=[], status="in_progress", usage=None)
    plan = StreamPlan(content_type=SSE_CONTENT_TYPE)
    plan.preamble = [
        emit({"type": "response.created", "response": started}),
        emit({"type": "response.in_progress", "response": started}),
    ]
    for index, item in enumerate(output[:-1]):  # reasoning arrives whole
        plan.preamble.append(emit({"type": "response.output_item.added", "output_index": index, "item": item}))
        plan.preamble.append(emit({"type": "response.output_item.done", "output_index": index, "item": item}))
    last, index = output[-1], len(output) - 1
    if last["type"] == "function_call":
        plan.preamble.append(
            emit({"type": "response.output_item.added", "output_index": index, "item": {**last, "arguments": ""}})
        )
        plan.content = [
            emit(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": last["id"],
                    "output_index": index,
                    "delta": piece,
                }
            )
            for piece in reply.pieces
        ]
        plan.trailer = [
            emit(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": last["id"],
                    "output_index": index,
                    "arguments": last["arguments"],
                }
            )
        ]
    else:
        empty = {**last, "status": "in_progress", "content": []}
        where = {"item_id": last["id"], "output_index": index, "content_index": 0}
        plan.preamble.append(emit({"type": "response.output_item.added", "output_index": index, "item": empty}))
        plan.preamble.append(
            emit(
                {
                    "type": "response.content_part.added",
                    **where,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                }
            )
        )
        plan.content = [emit({"type": "response.output_text.delta", **where, "delta": piece}) for piece in reply.pieces]
        plan.trailer = [
            emit({"type": "response.output_text.done", **where, "text": reply.text}),
            emit({"type": "response.content_part.done", **where, "part": last["content"][0]}),
        ]
    finished = response_body(
        body, reply, model=model, output=output, status="completed", usage=_usage(reply, with_usage)
    )
    final = "response.incomplete" if finished["status"] == "incomplete" else "response.completed"
    plan.trailer += [
        emit({"type": "response.output_item.done", "output_index": index, "item": last}),
        emit({"type": final, "response": finished}),
    ]
    return plan

"""Ollama wire format (``/api/chat`` and ``/api/generate`` JSON and NDJSON streaming, tags, embed)."""

from __future__ import annotations

from typing import Any

import orjson

from providers.mock_upstream.openai_format import content_texts, parse_tool_choice
from providers.mock_upstream.replies import (
    BadRequest,
    Conversation,
    Reply,
    StreamPlan,
    embedding_vector,
    tokens_for_chars,
)

JSON = dict[str, Any]
NDJSON_CONTENT_TYPE = "application/x-ndjson"
_DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop"}


def error_body(message: str) -> JSON:
    return {"error": message}


def line(payload: JSON) -> bytes:
    return orjson.dumps(payload) + b"\n"


def parse_chat(body: JSON) -> tuple[Conversation, int | None]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array")
    conversation = Conversation()
    last_role = None
    last_texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object")
        last_role = message.get("role")
        last_texts = content_texts(message.get("content"))
        conversation.texts.extend(last_texts)
        if last_role in ("tool", "function"):
            conversation.tool_results.append("\n".join(last_texts))
        if last_role == "user":
            conversation.last_user_text = "\n".join(last_texts)
    if last_role == "tool":
        conversation.tool_result = "\n".join(last_texts)
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            conversation.tool_names.append(function["name"])
    parse_tool_choice(body.get("tool_choice"), conversation.tool_names, conversation)
    return conversation, _num_predict(body)


def _num_predict(body: JSON) -> int | None:
    """``options.num_predict`` when it is a positive integer (Ollama's max tokens)."""
    raw_options = body.get("options")
    options: JSON = raw_options if isinstance(raw_options, dict) else {}
    num_predict = options.get("num_predict")
    return num_predict if isinstance(num_predict, int) and num_predict > 0 else None


def parse_generate(body: JSON) -> tuple[Conversation, int | None]:
    """An ``/api/generate`` body: ``prompt`` and optional ``suffix`` (fill-in-the-middle)."""
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string")
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise BadRequest("suffix must be a string")
    conversation = Conversation(texts=[prompt], last_user_text=prompt, suffix=suffix or None)
    if suffix:
        conversation.texts.append(suffix)
    return conversation, _num_predict(body)


def _final_fields(reply: Reply, with_usage: bool) -> JSON:
    fields: JSON = {"done": True, "done_reason": _DONE_REASONS[reply.finish]}
    prompt_eval_duration = reply.prompt_tokens * 1_000_000
    eval_duration = reply.completion_tokens * 10_000_000
    load_duration = 1_000_000
    fields["total_duration"] = load_duration + prompt_eval_duration + eval_duration
    fields["load_duration"] = load_duration
    if with_usage:
        fields["prompt_eval_count"] = reply.prompt_tokens
    fields["prompt_eval_duration"] = prompt_eval_duration
    if with_usage:
        fields["eval_count"] = reply.completion_tokens
    fields["eval_duration"] = eval_duration
    return fields


def _tool_calls(reply: Reply) -> list[JSON]:
    assert reply.tool_call is not None
    return [
        {
            "function": {
                "name": reply.tool_call.name,
                "arguments": reply.tool_call.arguments,
            }
        }
    ]


def chat_body(reply: Reply, *, model: str, created_at: str, with_usage: bool = True) -> JSON:
    message: JSON = {"role": "assistant", "content": reply.text}
    if reply.tool_call is not None:
        message["tool_calls"] = _tool_calls(reply)
    return {
        "model": model,
        "created_at": created_at,
        "message": message,
        **_final_fields(reply, with_usage),
    }


def chat_stream_plan(reply: Reply, *, model: str, created_at: str, with_usage: bool = True) -> StreamPlan:
    """One line per word (a tool call is one line), then the ``done: true`` line."""

    def chunk(message: JSON) -> bytes:
        return line(
            {
                "model": model,
                "created_at": created_at,
                "message": message,
                "done": False,
            }
        )

    plan = StreamPlan(content_type=NDJSON_CONTENT_TYPE)
    if reply.tool_call is not None:
        plan.content = [chunk({"role": "assistant", "content": "", "tool_calls": _tool_calls(reply)})]
    else:
        plan.content = [chunk({"role": "assistant", "content": piece}) for piece in reply.pieces]
    plan.trailer = [
        line(
            {
                "model": model,
                "created_at": created_at,
                "message": {"role": "assistant", "content": ""},
                **_final_fields(reply, with_usage),
            }
        )
    ]
    return plan


def generate_body(reply: Reply, *, model: str, created_at: str, with_usage: bool = True) -> JSON:
    """A non-streamed ``/api/generate`` answer."""
    return {"model": model, "created_at": created_at, "response": reply.text, **_final_fields(reply, with_usage)}


def generate_stream_plan(reply: Reply, *, model: str, created_at: str, with_usage: bool = True) -> StreamPlan:
    """One ``response`` line per word, then the ``done: true`` line."""
    plan = StreamPlan(content_type=NDJSON_CONTENT_TYPE)
    plan.content = [
        line({"model": model, "created_at": created_at, "response": piece, "done": False}) for piece in reply.pieces
    ]
    plan.trailer = [
        line({"model": model, "created_at": created_at, "response": "", **_final_fields(reply, with_usage)})
    ]
    return plan


def embed_body(inputs: list[str], *, model: str, dimensions: int, with_usage: bool = True) -> JSON:
    body: JSON = {
        "model": model,
        "embeddings": [embedding_vector(text, dimensions) for text in inputs],
        "total_duration": 1_000_000,
        "load_duration": 100_000,
    }
    if with_usage:
        body["prompt_eval_count"] = tokens_for_chars(sum(len(text) for text in inputs))
    return body


def tags_body(models: list[str]) -> JSON:
    return {
        "models": [
            {
                "name": name,
                "model": name,
                "modified_at": "2024-01-01T00:00:00Z",
                "size": 1_000_000,
                "digest": "0" * 64,
                "details": {
                    "format": "gguf",
                    "family": "mock",
                    "parameter_size": "1M",
                    "quantization_level": "Q4_0",
                },
            }
            for name in models
        ]
    }

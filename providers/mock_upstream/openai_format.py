"""OpenAI wire format (chat completions, legacy completions, embeddings, models).

Pure functions: request bodies in, response bodies / stream plans out.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.mock_upstream.replies import (
    BadRequest,
    Conversation,
    Reply,
    StreamPlan,
    embedding_vector,
    encode_base64_floats,
    positive_int_or_none,
    tokens_for_chars,
)

JSON = dict[str, Any]
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
DONE = b"data: [DONE]\n\n"

_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("invalid_request_error", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def sse(payload: JSON) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_body(status: int, message: str, *, param: str | None = None) -> JSON:
    error_type, code = _ERROR_TYPES.get(
        status,
        ("server_error", None) if status >= 500 else ("invalid_request_error", None),
    )
    return {"error": {"message": message, "type": error_type, "code": code, "param": param}}


def content_texts(content: object) -> list[str]:
    """Text of an OpenAI message ``content`` (string or list of content parts)."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


def _tool_names(body: JSON) -> list[str]:
    names: list[str] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            function = tool.get("function") if tool.get("type", "function") == "function" else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
    for function in body.get("functions") or []:  # legacy function calling
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def parse_tool_choice(choice: object, names: list[str], conversation: Conversation) -> None:
    """Apply an OpenAI-style ``tool_choice`` (also used by the Ollama route)."""
    if choice == "none":
        conversation.tools_disabled = True
    elif choice == "required" and names:
        conversation.forced_tool = names[0]
    elif isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            conversation.forced_tool = function["name"]
        elif isinstance(choice.get("name"), str):  # legacy ``function_call``
            conversation.forced_tool = choice["name"]


def parse_chat(body: JSON) -> tuple[Conversation, int | None]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", "messages")
    conversation = Conversation()
    last_role = None
    last_texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object", "messages")
        last_role = message.get("role")
        last_texts = content_texts(message.get("content"))
        conversation.texts.extend(last_texts)
        if last_role in ("tool", "function"):
            conversation.tool_results.append("\n".join(last_texts))
        if last_role == "user":
            conversation.last_user_text = "\n".join(last_texts)
    if last_role in ("tool", "function"):
        conversation.tool_result = "\n".join(last_texts)
    conversation.tool_names = _tool_names(body)
    parse_tool_choice(
        body.get("tool_choice", body.get("function_call")),
        conversation.tool_names,
        conversation,
    )
    max_tokens = positive_int_or_none(body.get("max_completion_tokens", body.get("max_tokens")), "max_tokens")
    return conversation, max_tokens


def parse_completion(body: JSON) -> tuple[Conversation, int | None]:
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = next((p for p in prompt if isinstance(p, str)), "") if prompt else ""
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string or an array of strings", "prompt")
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise BadRequest("'suffix' must be a string", "suffix")
    conversation = Conversation(texts=[prompt], last_user_text=prompt, suffix=suffix)
    if suffix is not None:
        conversation.texts.append(suffix)
    return conversation, positive_int_or_none(body.get("max_tokens"), "max_tokens")


def usage(reply: Reply) -> JSON:
    result: JSON = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens,
    }
    if reply.cached_prompt_tokens:
        result["prompt_tokens_details"] = {"cached_tokens": reply.cached_prompt_tokens}
    return result


def _tool_call_json(reply: Reply) -> list[JSON]:
    assert reply.tool_call is not None
    call = reply.tool_call
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json},
        }
    ]


def chat_completion_body(
    reply: Reply,
    *,
    model: str,
    completion_id: str,
    created: int,
    with_usage: bool = True,
) -> JSON:
    message: JSON = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_call is not None:
        message["content"] = None
        message["tool_calls"] = _tool_call_json(reply)
    body: JSON = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish,
            }
        ],
        "system_fingerprint": None,
    }
    if with_usage:
        body["usage"] = usage(reply)
    return body


def chat_stream_plan(
    reply: Reply,
    *,
    model: str,
    completion_id: str,
    created: int,
    include_usage: bool = False,
    with_usage: bool = True,
) -> StreamPlan:
    """One chunk per word (role in the first); tool calls: header, argument pieces."""
    usage_chunks = include_usage and with_usage

    def chunk(delta: JSON, finish: str | None = None) -> bytes:
        payload: JSON = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if usage_chunks:
            payload["usage"] = None
        return sse(payload)

    plan = StreamPlan(content_type=SSE_CONTENT_TYPE)
    if reply.tool_call is not None:
        call = reply.tool_call
        header = {
            "index": 0,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        plan.content.append(chunk({"role": "assistant", "content": None, "tool_calls": [header]}))
        for piece in call.pieces:
            plan.content.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    else:
        for i, piece in enumerate(reply.pieces):
            delta: JSON = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            plan.content.append(chunk(delta))
    plan.trailer.append(chunk({}, reply.finish))
    if usage_chunks:
        plan.trailer.append(
            sse(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": None,
                    "choices": [],
                    "usage": usage(reply),
                }
            )
        )
    plan.trailer.append(DONE)
    return plan


def text_completion_body(
    reply: Reply,
    *,
    model: str,
    completion_id: str,
    created: int,
    with_usage: bool = True,
) -> JSON:
    body: JSON = {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "text": reply.text,
                "index": 0,
                "logprobs": None,
                "finish_reason": reply.finish,
            }
        ],
    }
    if with_usage:
        body["usage"] = usage(reply)
    return body


def text_completion_stream_plan(
    reply: Reply,
    *,
    model: str,
    completion_id: str,
    created: int,
    include_usage: bool = False,
    with_usage: bool = True,
) -> StreamPlan:
    def chunk(text: str, finish: str | None, choices: bool = True) -> bytes:
        payload: JSON = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}] if choices else [],
        }
        if include_usage and with_usage:
            payload["usage"] = None if choices else usage(reply)
        return sse(payload)

    plan = StreamPlan(content_type=SSE_CONTENT_TYPE)
    plan.content = [chunk(piece, None) for piece in reply.pieces]
    plan.trailer.append(chunk("", reply.finish))
    if include_usage and with_usage:
        plan.trailer.append(chunk("", None, choices=False))
    plan.trailer.append(DONE)
    return plan


def embeddings_body(
    inputs: list[str],
    *,
    model: str,
    dimensions: int,
    encoding_format: str = "float",
    with_usage: bool = True,
) -> JSON:
    data: list[JSON] = []
    for index, text in enumerate(inputs):
        vector = embedding_vector(text, dimensions)
        embedding: object = encode_base64_floats(vector) if encoding_format == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    body: JSON = {"object": "list", "data": data, "model": model}
    if with_usage:
        tokens = tokens_for_chars(sum(len(text) for text in inputs))
        body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return body


def models_body(models: list[str]) -> JSON:
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": 1700000000,
                "owned_by": "mock-upstream",
            }
            for name in models
        ],
    }

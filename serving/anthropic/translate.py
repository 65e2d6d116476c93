"""Anthropic Messages API inbound: pure translation (no I/O).

``POST /v1/messages`` lets Claude Code and the official ``anthropic`` SDK use
any backend model. The body is validated the way Anthropic validates it and
turned into an OpenAI ``chat.completions`` body (``parse_messages_request``),
so the shared chat flow (``serving.chat.serve_chat``) routes, fails over and
accounts it like any chat call. Its OpenAI-shaped answer is translated back in
:mod:`serving.anthropic.stream` (whole answers and streams). Errors are
rendered in Anthropic's shape by ``error_body`` / ``error_event``.

Request rules: ``system`` (and ``role: "system"`` messages, in place) → system
messages; text and image blocks → content
parts (base64 → ``data:`` URL); assistant ``tool_use`` → ``tool_calls``; user
``tool_result`` → ``role: tool`` messages (images they carry follow in a user
message); ``tools`` → function tools; ``tool_choice`` auto/any/tool/none →
auto/required/{function}/none; ``stop_sequences`` → ``stop``; ``top_k``,
``thinking``, ``context_management``, ``output_config.effort`` and
``cache_control`` are dropped (OpenAI has no equivalent); see
:mod:`serving.anthropic.options` for today's fields and block types.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gateway_platform.errors import GatewayError, invalid_request
from serving.anthropic.options import (
    DROPPED_BLOCKS,
    output_format,
    search_result_text,
    validate_context_management,
    validate_thinking,
)
from serving.requests import ChatRequest, parse_json_object

logger = logging.getLogger(__name__)

JSON = dict[str, Any]

# Anthropic fields with no OpenAI equivalent: accepted and not forwarded.
DROPPED_FIELDS = frozenset(
    {"top_k", "thinking", "service_tier", "container", "context_management", "mcp_servers", "output_config"}
)
TOOL_CHOICES: dict[str, str] = {"auto": "auto", "any": "required", "none": "none"}
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
TOOL_ERROR_PREFIX = "Error: "


# --------------------------------------------------------------------------- request


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(block: JSON, param: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise invalid_request(f"Invalid type for '{param}.text': expected a string.", param=f"{param}.text")
    return text


def _blocks(content: object, param: str) -> list[JSON]:
    """Content as a list of typed blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise invalid_request(
            f"Invalid type for '{param}': expected a string or an array of content blocks.", param=param
        )
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid_request(f"'{param}[{i}]' must be an object with a 'type'.", param=f"{param}[{i}]")
    return content


def _image_part(block: JSON, param: str) -> JSON:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise invalid_request(f"'{param}.source' needs 'media_type' and 'data'.", param=f"{param}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise invalid_request(f"Invalid '{param}.source': expected a base64 or url image source.", param=f"{param}.source")


def _document_part(block: JSON, param: str) -> JSON:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "text" and isinstance(source, dict) and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    if kind == "base64" and isinstance(source, dict) and source.get("media_type") == "application/pdf":
        data = source.get("data")
        if isinstance(data, str):
            name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
            return {"type": "file", "file": {"filename": name, "file_data": f"data:application/pdf;base64,{data}"}}
    raise invalid_request(
        f"Invalid '{param}.source': documents must be base64 PDF or plain text.", param=f"{param}.source"
    )


def _content_part(block: JSON, param: str) -> JSON:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": _text(block, param)}
    if kind == "image":
        return _image_part(block, param)
    if kind == "document":
        return _document_part(block, param)
    raise invalid_request(f"Unsupported content block type '{kind}' in '{param}'.", param=param)


def _tool_result(block: JSON, param: str) -> tuple[JSON, list[JSON]]:
    """A ``tool_result`` block → (the ``role: tool`` message, images/files to show after it)."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid_request(f"Missing required parameter: '{param}.tool_use_id'.", param=f"{param}.tool_use_id")
    content = block.get("content")
    texts: list[str] = []
    attachments: list[JSON] = []
    if content is not None:
        for i, inner in enumerate(_blocks(content, f"{param}.content")):
            part = _content_part(inner, f"{param}.content[{i}]")
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                attachments.append(part)
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": call_id, "content": text}, attachments


def _user_messages(content: object, param: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[JSON] = []
    parts: list[JSON] = []
    for i, block in enumerate(_blocks(content, param)):
        if block["type"] == "tool_result":
            message, images = _tool_result(block, f"{param}[{i}]")
            tool_messages.append(message)
            parts.extend(images)
        elif block["type"] == "search_result":
            parts.append({"type": "text", "text": search_result_text(block, f"{param}[{i}]")})
        elif block["type"] in DROPPED_BLOCKS:
            continue
        else:
            parts.append(_content_part(block, f"{param}[{i}]"))
    # Tool messages must directly follow the assistant's tool_calls; other blocks come after.
    return tool_messages + ([{"role": "user", "content": parts}] if parts else [])


def _tool_call(block: JSON, param: str) -> JSON:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise invalid_request(f"'{param}' needs a string 'id' and 'name'.", param=param)
    if not isinstance(arguments, dict):
        raise invalid_request(f"Invalid type for '{param}.input': expected an object.", param=f"{param}.input")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def _assistant_message(content: object, param: str) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for i, block in enumerate(_blocks(content, param)):
        kind = block["type"]
        if kind == "text":
            texts.append(_text(block, f"{param}[{i}]"))
        elif kind == "tool_use":
            calls.append(_tool_call(block, f"{param}[{i}]"))
        elif kind not in DROPPED_BLOCKS:
            raise invalid_request(f"Unsupported content block type '{kind}' in '{param}[{i}]'.", param=f"{param}[{i}]")
    message: JSON = {"role": "assistant", "content": "\n".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def translate_messages(messages: object) -> list[JSON]:
    """Anthropic ``messages`` → OpenAI chat messages (tool results as ``role: tool``)."""
    if messages is None:
        raise invalid_request("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("'messages' must be a non-empty array of message objects.", param="messages")
    result: list[JSON] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid_request(f"Invalid type for '{param}': expected an object.", param=param)
        role, content = message.get("role"), message.get("content")
        if content is None:
            raise invalid_request(f"Missing required parameter: '{param}.content'.", param=f"{param}.content")
        if role == "user":
            result.extend(_user_messages(content, f"{param}.content"))
        elif role == "assistant":
            result.append(_assistant_message(content, f"{param}.content"))
        elif role == "system":  # today's API: system messages may appear inside ``messages``
            text = _system_text(content, f"{param}.content")
            if text:
                result.append({"role": "system", "content": text})
        else:
            raise invalid_request(
                f"Invalid value for '{param}.role': expected 'user', 'assistant' or 'system'.", param=f"{param}.role"
            )
    return result


def _system_text(system: object, param: str) -> str | None:
    if system is None or isinstance(system, str):
        return system or None
    if not isinstance(system, list):
        raise invalid_request(f"Invalid type for '{param}': expected a string or an array of text blocks.", param=param)
    texts: list[str] = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid_request(f"'{param}[{i}]' must be a text block.", param=f"{param}[{i}]")
        texts.append(_text(block, f"{param}[{i}]"))
    return "\n\n".join(texts) or None


def translate_system(system: object) -> str | None:
    """Anthropic ``system`` (string or text blocks) → the system message text."""
    return _system_text(system, "system")


def translate_tools(tools: object) -> list[JSON]:
    """Anthropic custom tools → OpenAI function tools (Anthropic server tools are dropped)."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid_request("Invalid type for 'tools': expected an array.", param="tools")
    result: list[JSON] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid_request(f"Invalid type for '{param}': expected an object.", param=param)
        if tool.get("type") not in (None, "custom"):
            logger.warning("dropping Anthropic server tool %r: no equivalent on other backends", tool.get("type"))
            continue
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise invalid_request(f"Missing required parameter: '{param}.name'.", param=f"{param}.name")
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise invalid_request(
                f"'{param}.input_schema' must be a JSON schema of type object.", param=f"{param}.input_schema"
            )
        function: JSON = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        result.append({"type": "function", "function": function})
    return result


def translate_tool_choice(choice: object) -> tuple[str | JSON, bool]:
    """Anthropic ``tool_choice`` → (OpenAI ``tool_choice``, parallel tool use allowed)."""
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or kind not in (*TOOL_CHOICES, "tool"):
        raise invalid_request(
            "Invalid 'tool_choice': expected an object with type auto, any, tool or none.", param="tool_choice"
        )
    parallel = choice.get("disable_parallel_tool_use") is not True
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("Missing required parameter: 'tool_choice.name'.", param="tool_choice.name")
        return {"type": "function", "function": {"name": name}}, parallel
    return TOOL_CHOICES[kind], parallel


def _required_int(data: JSON, name: str) -> int:
    value = data.get(name)
    if value is None:
        raise invalid_request(f"Missing required parameter: '{name}'.", param=name)
    if not _is_int(value) or value < 1:
        raise invalid_request(f"Invalid value for '{name}': expected an integer of at least 1.", param=name)
    return int(value)


def _optional(data: JSON, name: str, check: Any, label: str) -> Any:
    value = data.get(name)
    if value is not None and not check(value):
        raise invalid_request(f"Invalid type for '{name}': expected {label}.", param=name)
    return value


def _stop_sequences(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise invalid_request(
            "Invalid type for 'stop_sequences': expected an array of strings.", param="stop_sequences"
        )
    return value


def parse_messages_request(raw: bytes) -> ChatRequest:
    """Validate an Anthropic Messages body and translate it into an OpenAI chat request.

    Raises a 400 ``GatewayError`` naming the offending field.
    """
    return translate_messages_request(parse_json_object(raw))


def translate_messages_request(data: JSON) -> ChatRequest:
    """``parse_messages_request`` for an already decoded body (which is left unchanged)."""
    model = data.get("model")
    if model is None:
        raise invalid_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("Invalid type for 'model': expected a non-empty string.", param="model")
    max_tokens = _required_int(data, "max_tokens")
    messages = translate_messages(data.get("messages"))
    system = translate_system(data.get("system"))
    stream = bool(_optional(data, "stream", lambda v: isinstance(v, bool), "a boolean"))
    body: JSON = {
        "model": model.strip(),
        "messages": ([{"role": "system", "content": system}] if system else []) + messages,
        "max_tokens": max_tokens,
    }
    tools = translate_tools(data.get("tools"))
    if data.get("tool_choice") is not None:
        choice, parallel = translate_tool_choice(data["tool_choice"])
        if tools:  # OpenAI rejects tool_choice without tools
            body["tool_choice"] = choice
            if not parallel:
                body["parallel_tool_calls"] = False
    if tools:
        body["tools"] = tools
    validate_thinking(data.get("thinking"))
    validate_context_management(data.get("context_management"))
    response_format = output_format(data.get("output_config"))
    if response_format is not None:
        body["response_format"] = response_format
    stops = _stop_sequences(data.get("stop_sequences"))
    if stops:
        body["stop"] = stops
    for name in ("temperature", "top_p"):
        if _optional(data, name, _is_number, "a number") is not None:
            body[name] = data[name]
    _optional(data, "top_k", _is_int, "an integer")
    metadata = _optional(data, "metadata", lambda v: isinstance(v, dict), "an object") or {}
    if isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        body["user"] = metadata["user_id"]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    dropped = sorted(DROPPED_FIELDS.intersection(data))
    if dropped:
        logger.debug("dropping Anthropic-only fields: %s", ", ".join(dropped))
    return ChatRequest(
        body=body,
        model=body["model"],
        stream=stream,
        include_usage=stream,
        max_tokens=max_tokens,
        skill=_optional(data, "skill", lambda v: isinstance(v, str), "a string"),
        smart_routing=_optional(data, "smart_routing", lambda v: isinstance(v, bool), "a boolean"),
        provider=_optional(data, "provider", lambda v: isinstance(v, str), "a string"),
    )


# --------------------------------------------------------------------------- errors


def error_type(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_payload(kind: str, message: str) -> JSON:
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_body(err: GatewayError) -> bytes:
    """A ``GatewayError`` as Anthropic's error JSON body."""
    return orjson.dumps(error_payload(error_type(err.status), err.message))


def sse_event(name: str, payload: JSON) -> bytes:
    """One named server-sent event."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_event(err: GatewayError) -> bytes:
    """A ``GatewayError`` as the ``event: error`` that ends a started stream."""
    return sse_event("error", error_payload(error_type(err.status), err.message))

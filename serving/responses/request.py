"""Responses API requests → the gateway's chat requests (pure translation, no I/O).

``POST /v1/responses`` is served by the shared chat flow: the body is validated
the way OpenAI validates it and becomes an OpenAI ``chat.completions`` body,
which every upstream kind already speaks through its adapter. What the answer
direction needs to restore the Responses shapes (which tools were custom or in
a namespace, what to echo) travels in a :class:`ResponsesContext`.

Translation rules (documented in the README):

- ``instructions`` → a leading system message; ``developer`` and ``system``
  messages → system messages; ``input_text`` / ``output_text`` / ``refusal``
  parts → text; ``input_image`` → ``image_url``; ``input_file`` with
  ``file_data`` → a ``file`` part.
- ``function_call`` / ``custom_tool_call`` items → assistant ``tool_calls``
  (consecutive calls join one assistant message); ``function_call_output`` /
  ``custom_tool_call_output`` → ``role: tool`` messages.
- ``additional_tools`` items (Codex sends its tools this way for newer
  models) are read as tools, like ``tools``.
- ``reasoning`` items (and their ``encrypted_content``) are dropped: only the
  vendor that produced them can read them. ``web_search_call``,
  ``file_search_call``, ``tool_search_call`` / ``_output`` and other records of
  hosted tools are dropped the same way.
- ``function`` tools → function tools (``strict`` kept); ``custom`` (freeform)
  tools → a function taking one string ``input``; ``namespace`` groups are
  flattened to ``<namespace>__<tool>`` and restored on the way back. Hosted
  tools (``web_search``, ``file_search``, ``code_interpreter``,
  ``image_generation``, ``computer_use_preview``, ``mcp``, ``tool_search``,
  ``local_shell``) cannot run on a chat upstream and are dropped.
- ``reasoning.effort`` → ``reasoning_effort``; ``text.format`` json_schema /
  json_object → ``response_format``; ``max_output_tokens`` → ``max_tokens``.
- ``store``, ``include``, ``prompt_cache_key``, ``client_metadata``,
  ``metadata``, ``truncation``, ``service_tier``, ``safety_identifier``,
  ``text.verbosity`` and ``reasoning.summary`` are accepted and not forwarded.
- Refused with 400: ``background: true``, ``conversation``, ``prompt``
  templates, ``item_reference`` items, unknown item / part / tool types, a tool
  whose ``parameters`` is not a JSON-schema object.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway_platform.errors import invalid_request
from serving.requests import ChatRequest, parse_json_object

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
NAMESPACE_SEPARATOR = "__"
CUSTOM_INPUT = "input"
TOOL_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal", "summary_text", "reasoning_text"})
# Item types that record hosted tools or vendor reasoning: meaningless to another upstream.
DROPPED_ITEMS = frozenset(
    {
        "reasoning",
        "web_search_call",
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "code_interpreter_call",
        "image_generation_call",
        "tool_search_call",
        "tool_search_output",
        "mcp_list_tools",
        "mcp_call",
        "mcp_approval_request",
        "mcp_approval_response",
        "compaction",
    }
)
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_2025_08_26",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "computer_use",
        "mcp",
        "tool_search",
        "local_shell",
    }
)
REFUSED_FIELDS = {
    "conversation": "Conversations are not supported by this gateway; send the history in 'input' "
    "or use 'previous_response_id'.",
    "prompt": "Prompt templates are not supported by this gateway; send 'instructions' and 'input'.",
}
TOOL_CHOICES = frozenset({"auto", "none", "required"})
# Codex (newer models) sends its tools as an input item of this type rather than in ``tools``.
ADDITIONAL_TOOLS = "additional_tools"


@dataclass(slots=True)
class ToolNames:
    """How flattened tool names map back to Responses tools."""

    custom: set[str] = field(default_factory=set)
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat name → (namespace, name)


@dataclass(slots=True)
class ResponsesContext:
    """What the answer direction needs: names to restore, fields to echo, storage."""

    model: str
    tools: ToolNames
    echo: JSON
    store: bool
    input_items: list[JSON]  # this request's input items (for the stored conversation)
    previous_response_id: str | None = None


@dataclass(slots=True)
class ParsedResponses:
    """A validated Responses body, before any stored history is prepended."""

    data: JSON
    previous_response_id: str | None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(data: JSON, name: str, check: Any, label: str) -> Any:
    value = data.get(name)
    if value is not None and not check(value):
        raise invalid_request(f"Invalid type for '{name}': expected {label}.", param=name)
    return value


def parse_responses_body(raw: bytes) -> ParsedResponses:
    """Validate the top level of a Responses body (400 naming the bad field)."""
    data = parse_json_object(raw)
    model = data.get("model")
    if model is None:
        raise invalid_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("Invalid type for 'model': expected a non-empty string.", param="model")
    if data.get("input") is None and data.get("previous_response_id") is None:
        raise invalid_request("Missing required parameter: 'input'.", param="input")
    for name, message in REFUSED_FIELDS.items():
        if data.get(name) is not None:
            raise invalid_request(message, param=name)
    if data.get("background") is True:
        raise invalid_request("Background responses are not supported by this gateway.", param="background")
    previous = _optional(data, "previous_response_id", lambda v: isinstance(v, str) and v, "a response id")
    _optional(data, "instructions", lambda v: isinstance(v, str), "a string")
    _optional(data, "stream", lambda v: isinstance(v, bool), "a boolean")
    _optional(data, "store", lambda v: isinstance(v, bool), "a boolean")
    max_out = _optional(data, "max_output_tokens", _is_int, "an integer")
    if max_out is not None and max_out < 1:
        raise invalid_request(
            "Invalid value for 'max_output_tokens': expected an integer of at least 1.", param="max_output_tokens"
        )
    for name in ("temperature", "top_p"):
        _optional(data, name, _is_number, "a number")
    for name in ("reasoning", "text", "metadata", "client_metadata"):
        _optional(data, name, lambda v: isinstance(v, dict), "an object")
    _optional(data, "parallel_tool_calls", lambda v: isinstance(v, bool), "a boolean")
    _optional(data, "tools", lambda v: isinstance(v, list), "an array")
    return ParsedResponses(data=data, previous_response_id=previous)


# --------------------------------------------------------------------------- input items


def input_items(data: JSON) -> list[JSON]:
    """``input`` as a list of items (a string is one user message)."""
    value = data.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise invalid_request("Invalid type for 'input': expected a string or an array of items.", param="input")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid_request(f"Invalid type for 'input[{i}]': expected an object.", param=f"input[{i}]")
    return value


def _part(part: object, param: str) -> JSON:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise invalid_request(f"'{param}' must be an object with a 'type'.", param=param)
    kind = part["type"]
    if kind in TEXT_PARTS:
        text = part.get("text", part.get("refusal"))
        if not isinstance(text, str):
            raise invalid_request(f"Invalid type for '{param}.text': expected a string.", param=f"{param}.text")
        return {"type": "text", "text": text}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise invalid_request(
                f"'{param}' needs an 'image_url' (file ids are not supported by this gateway).", param=param
            )
        image: JSON = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise invalid_request(
                f"'{param}' needs 'file_data' (file ids and URLs are not supported by this gateway).", param=param
            )
        name = part.get("filename") if isinstance(part.get("filename"), str) else "file"
        return {"type": "file", "file": {"filename": name, "file_data": data}}
    raise invalid_request(f"Unsupported content part type '{kind}' in '{param}'.", param=f"{param}.type")


def _content(content: object, param: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_request(f"Invalid type for '{param}': expected a string or an array of parts.", param=param)
    parts = [_part(part, f"{param}[{i}]") for i, part in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts) if len(parts) != 1 else parts[0]["text"]
    return parts


def _output_text(output: object, param: str) -> str:
    """A tool output (string or content parts) as the text of a ``role: tool`` message."""
    if isinstance(output, str):
        return output
    content = _content(output, param)
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p["type"] == "text")


def _flat_name(name: str, namespace: object) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if isinstance(namespace, str) and namespace else name


def _call(item: JSON, param: str) -> JSON:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise invalid_request(f"Missing required parameter: '{param}.call_id'.", param=f"{param}.call_id")
    if not isinstance(name, str) or not name:
        raise invalid_request(f"Missing required parameter: '{param}.name'.", param=f"{param}.name")
    if item["type"] == "custom_tool_call":
        value = item.get("input")
        if not isinstance(value, str):
            raise invalid_request(f"Invalid type for '{param}.input': expected a string.", param=f"{param}.input")
        arguments = orjson.dumps({CUSTOM_INPUT: value}).decode()
    else:
        arguments = item.get("arguments")
        if not isinstance(arguments, str):
            raise invalid_request(
                f"Invalid type for '{param}.arguments': expected a JSON string.", param=f"{param}.arguments"
            )
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": _flat_name(name, item.get("namespace")), "arguments": arguments},
    }


def _call_output(item: JSON, param: str) -> JSON:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid_request(f"Missing required parameter: '{param}.call_id'.", param=f"{param}.call_id")
    if "output" not in item:
        raise invalid_request(f"Missing required parameter: '{param}.output'.", param=f"{param}.output")
    return {"role": "tool", "tool_call_id": call_id, "content": _output_text(item["output"], f"{param}.output")}


def _message(item: JSON, param: str) -> JSON:
    role = item.get("role")
    if role not in TOOL_ROLES:
        raise invalid_request(
            f"Invalid value for '{param}.role': expected one of assistant, developer, system, user.",
            param=f"{param}.role",
        )
    if "content" not in item:
        raise invalid_request(f"Missing required parameter: '{param}.content'.", param=f"{param}.content")
    return {"role": TOOL_ROLES[role], "content": _content(item["content"], f"{param}.content")}


def translate_items(items: list[JSON], *, first_index: int = 0) -> list[JSON]:
    """Responses input items → OpenAI chat messages (consecutive tool calls share one assistant message)."""
    messages: list[JSON] = []
    for offset, item in enumerate(items):
        param = f"input[{first_index + offset}]"
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, param))
        elif kind in ("function_call", "custom_tool_call"):
            call = _call({**item, "type": kind}, param)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(_call_output(item, param))
        elif kind in DROPPED_ITEMS or kind == ADDITIONAL_TOOLS:  # tools: see ``additional_tools``
            continue
        elif kind == "item_reference":
            raise invalid_request(
                f"'{param}': item references are not supported by this gateway; send the item itself.", param=param
            )
        else:
            raise invalid_request(f"Unsupported input item type '{kind}' in '{param}'.", param=f"{param}.type")
    return messages


# --------------------------------------------------------------------------- tools


def _schema(tool: JSON, param: str) -> JSON:
    schema = tool.get("parameters")
    if schema is None:
        return {"type": "object", "properties": {}}
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise invalid_request(
            f"Invalid '{param}.parameters': a tool's parameters must be a JSON schema of type object.",
            param=f"{param}.parameters",
        )
    return schema


def _function_tool(tool: JSON, param: str, name: str) -> JSON:
    function: JSON = {"name": name, "parameters": _schema(tool, param)}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _custom_tool(tool: JSON, name: str) -> JSON:
    description = tool.get("description") if isinstance(tool.get("description"), str) else ""
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        description += f"\n\nThe input must match this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": (description + "\n\nPass the raw tool input as the string 'input'.").strip(),
            "parameters": {
                "type": "object",
                "properties": {CUSTOM_INPUT: {"type": "string", "description": "The raw tool input."}},
                "required": [CUSTOM_INPUT],
            },
        },
    }


def _tool_name(tool: JSON, param: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_request(f"Missing required parameter: '{param}.name'.", param=f"{param}.name")
    return name


def translate_tools(
    tools: object, names: ToolNames, *, namespace: str | None = None, param: str = "tools"
) -> list[JSON]:
    """Responses tools → chat function tools; ``names`` learns what to restore."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid_request(f"Invalid type for '{param}': expected an array.", param=param)
    result: list[JSON] = []
    for i, tool in enumerate(tools):
        here = f"{param}[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid_request(f"'{here}' must be an object with a 'type'.", param=here)
        kind = tool["type"]
        if kind in HOSTED_TOOLS:
            logger.debug("dropping hosted tool %r: a chat upstream cannot run it", kind)
            continue
        if kind == "namespace":
            inner_namespace = _tool_name(tool, here)
            result.extend(translate_tools(tool.get("tools"), names, namespace=inner_namespace, param=f"{here}.tools"))
            continue
        if kind not in ("function", "custom"):
            raise invalid_request(f"Unsupported tool type '{kind}' in '{here}'.", param=f"{here}.type")
        name = _tool_name(tool, here)
        flat = _flat_name(name, namespace)
        if namespace:
            names.namespaced[flat] = (namespace, name)
        if kind == "custom":
            names.custom.add(flat)
            result.append(_custom_tool(tool, flat))
        else:
            result.append(_function_tool(tool, here, flat))
    return result


def additional_tools(items: list[JSON], names: ToolNames) -> list[JSON]:
    """The tools ``additional_tools`` input items declare (Codex), translated like ``tools``."""
    result: list[JSON] = []
    for index, item in enumerate(items):
        if item.get("type") == ADDITIONAL_TOOLS:
            result.extend(translate_tools(item.get("tools"), names, param=f"input[{index}].tools"))
    return result


def _unique(tools: list[JSON]) -> list[JSON]:
    """One tool per name, the last definition winning (a stored conversation may declare them again)."""
    by_name = {tool["function"]["name"]: tool for tool in tools}
    return list(by_name.values())


def translate_tool_choice(choice: object) -> str | JSON | None:
    """Responses ``tool_choice`` → chat ``tool_choice`` (hosted-tool choices become ``auto``)."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise invalid_request(
                "Invalid value for 'tool_choice': expected auto, none or required.", param="tool_choice"
            )
        return choice
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise invalid_request("Invalid type for 'tool_choice': expected a string or an object.", param="tool_choice")
    if choice["type"] in ("function", "custom"):
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("Missing required parameter: 'tool_choice.name'.", param="tool_choice.name")
        return {"type": "function", "function": {"name": name}}
    if choice["type"] == "allowed_tools":
        mode = choice.get("mode")
        return "required" if mode == "required" else "auto"
    return "auto"


def _response_format(text: JSON) -> JSON | None:
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str):
        raise invalid_request("Invalid type for 'text.format': expected an object with a 'type'.", param="text.format")
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise invalid_request("'text.format.schema' must be a JSON schema object.", param="text.format.schema")
        spec: JSON = {"name": fmt.get("name") if isinstance(fmt.get("name"), str) else "response", "schema": schema}
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": spec}
    raise invalid_request(f"Unsupported 'text.format.type' '{fmt['type']}'.", param="text.format.type")


# --------------------------------------------------------------------------- the whole request

ECHOED = (
    "instructions",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "max_output_tokens",
    "previous_response_id",
    "reasoning",
    "text",
    "truncation",
    "metadata",
    "tools",
    "user",
    "prompt_cache_key",
)


def build_chat_request(parsed: ParsedResponses, history: list[JSON]) -> tuple[ChatRequest, ResponsesContext]:
    """The chat request for a validated Responses body; ``history`` holds the stored conversation's items.

    ``history`` comes first (``previous_response_id``), then ``instructions``,
    then this request's ``input``; instructions are not carried over, as OpenAI documents.
    """
    data = parsed.data
    model = data["model"].strip()
    items = input_items(data)
    messages = translate_items(history, first_index=0) if history else []
    # Errors in stored items cannot be the client's fault: they were validated when stored.
    own = translate_items(items)
    instructions = data.get("instructions")
    system = [{"role": "system", "content": instructions}] if instructions else []
    names = ToolNames()
    body: JSON = {"model": model, "messages": system + messages + own}
    if not body["messages"]:
        raise invalid_request("'input' must contain at least one item.", param="input")
    tools = _unique(translate_tools(data.get("tools"), names) + additional_tools([*history, *items], names))
    if tools:
        body["tools"] = tools
        choice = translate_tool_choice(data.get("tool_choice"))
        if choice is not None:
            body["tool_choice"] = choice
        if data.get("parallel_tool_calls") is False:
            body["parallel_tool_calls"] = False
    else:
        translate_tool_choice(data.get("tool_choice"))  # still validated
    max_tokens = data.get("max_output_tokens")
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        if data.get(name) is not None:
            body[name] = data[name]
    reasoning = data.get("reasoning") or {}
    effort = reasoning.get("effort")
    if isinstance(effort, str) and effort and effort != "none":
        body["reasoning_effort"] = effort
    response_format = _response_format(data.get("text") or {})
    if response_format is not None:
        body["response_format"] = response_format
    if isinstance(data.get("user"), str) and data["user"]:
        body["user"] = data["user"]
    stream = bool(data.get("stream"))
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    request = ChatRequest(
        body=body,
        model=model,
        stream=stream,
        include_usage=stream,
        max_tokens=max_tokens,
        skill=_optional(data, "skill", lambda v: isinstance(v, str), "a string"),
        smart_routing=_optional(data, "smart_routing", lambda v: isinstance(v, bool), "a boolean"),
        provider=_optional(data, "provider", lambda v: isinstance(v, str), "a string"),
    )
    context = ResponsesContext(
        model=model,
        tools=names,
        echo={name: data.get(name) for name in ECHOED},
        store=data.get("store") is not False,
        input_items=items,
        previous_response_id=parsed.previous_response_id,
    )
    return request, context

"""Pure OpenAI ⇄ Anthropic Messages translation (no I/O).

``build_messages_request`` turns an OpenAI ``chat.completions`` body into a
Messages API body, ``apply_cache_control`` marks the stable prefix for prompt
caching, and ``parse_messages_response`` turns a Messages answer into an OpenAI
``chat.completion``. The stream state machine lives in
:mod:`providers.adapters.anthropic` next to the streaming call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from gateway_platform.errors import invalid_request
from providers.adapters import chat_shapes
from providers.adapters.base import JSON, Completion, Deployment, Usage

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 4096
EPHEMERAL: JSON = {"type": "ephemeral"}
# Anthropic's temperature range is [0, 1]; OpenAI's is [0, 2]. Clamping keeps a
# client's "very random" request working instead of failing with a 400.
MAX_TEMPERATURE = 1.0

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# --------------------------------------------------------------------------- request


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<media>;base64,<data>`` → ``(media, data)``; None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    media, _, encoding = header.partition(";")
    if not sep or encoding.lower() != "base64":
        return None
    return media or "application/octet-stream", data


def _image_block(part: JSON) -> JSON:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise invalid_request("image_url parts need a 'url'.", param="messages")
    decoded = parse_data_url(url)
    if decoded is not None:
        media, data = decoded
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise invalid_request("Image URLs must be http(s) or base64 data: URLs.", param="messages")


def _file_block(part: JSON) -> JSON:
    file = part.get("file")
    data_url = file.get("file_data") if isinstance(file, dict) else None
    decoded = parse_data_url(data_url) if isinstance(data_url, str) else None
    if decoded is None or decoded[0] != "application/pdf":
        raise invalid_request("Only base64 PDF files are supported by this provider.", param="messages")
    return {"type": "document", "source": {"type": "base64", "media_type": decoded[0], "data": decoded[1]}}


def _text_block(text: str) -> JSON | None:
    # Anthropic rejects empty and whitespace-only text blocks.
    return {"type": "text", "text": text} if text.strip() else None


def content_blocks(content: object) -> list[JSON]:
    """An OpenAI message ``content`` (string or parts) → Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        block = _text_block(content)
        return [block] if block else []
    if not isinstance(content, list):
        raise invalid_request("Message content must be a string or a list of parts.", param="messages")
    blocks: list[JSON] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal") and isinstance(part, dict):
            block = _text_block(str(part.get(kind) or ""))
            if block:
                blocks.append(block)
        elif kind == "image_url" and isinstance(part, dict):
            blocks.append(_image_block(part))
        elif kind == "file" and isinstance(part, dict):
            blocks.append(_file_block(part))
        else:
            raise invalid_request(f"Content part type {kind!r} is not supported by this provider.", param="messages")
    return blocks


def _text_only(content: object) -> list[JSON]:
    return [b for b in content_blocks(content) if b["type"] == "text"]


def _tool_use_block(call: object) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid_request("Assistant tool_calls need an id and a function name.", param="messages")
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise invalid_request("Tool call arguments must be a JSON object.", param="messages") from None
    if not isinstance(arguments, dict):
        raise invalid_request("Tool call arguments must be a JSON object.", param="messages")
    return {"type": "tool_use", "id": str(call.get("id") or ""), "name": function["name"], "input": arguments}


def _tool_result_block(message: JSON) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid_request("Tool messages need a 'tool_call_id'.", param="messages")
    content = message.get("content")
    result: str | list[JSON] = content if isinstance(content, str) else content_blocks(content)
    return {"type": "tool_result", "tool_use_id": call_id, "content": result}


def merge_turns(turns: list[tuple[str, list[JSON]]]) -> list[JSON]:
    """Merge consecutive same-role turns (Anthropic requires alternation).

    Empty turns are dropped. In a user turn, ``tool_result`` blocks must come
    before any other block, so they are moved first (order otherwise kept).
    """
    merged: list[JSON] = []
    for role, blocks in turns:
        if not blocks:
            continue
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": role, "content": list(blocks)})
    for message in merged:
        if message["role"] == "user":
            blocks = message["content"]
            message["content"] = [b for b in blocks if b["type"] == "tool_result"] + [
                b for b in blocks if b["type"] != "tool_result"
            ]
    return merged


def translate_messages(messages: object) -> tuple[list[JSON], list[JSON]]:
    """OpenAI ``messages`` → (Anthropic ``system`` blocks, alternating ``messages``)."""
    if not isinstance(messages, list) or not messages:
        raise invalid_request("'messages' must be a non-empty array.", param="messages")
    system: list[JSON] = []
    turns: list[tuple[str, list[JSON]]] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(message, dict) or role is None:
            raise invalid_request("Each message needs a 'role'.", param="messages")
        if role in ("system", "developer"):
            system.extend(_text_only(message.get("content")))
        elif role == "user":
            turns.append(("user", content_blocks(message.get("content"))))
        elif role == "assistant":
            blocks = _text_only(message.get("content"))
            blocks.extend(_tool_use_block(call) for call in message.get("tool_calls") or [])
            turns.append(("assistant", blocks))
        elif role == "tool":
            turns.append(("user", [_tool_result_block(message)]))
        else:
            raise invalid_request(f"Message role {role!r} is not supported by this provider.", param="messages")
    merged = merge_turns(turns)
    if not merged:
        raise invalid_request("At least one non-empty user or assistant message is required.", param="messages")
    return system, merged


def translate_tools(tools: object) -> list[JSON]:
    """OpenAI function tools → Anthropic tools (other tool types are dropped)."""
    result: list[JSON] = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            logger.debug("dropping non-function tool for anthropic")
            continue
        entry: JSON = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        result.append(entry)
    return result


def translate_tool_choice(choice: object, parallel_tool_calls: object = None) -> JSON | None:
    """OpenAI ``tool_choice`` (+ ``parallel_tool_calls``) → Anthropic ``tool_choice``."""
    result: JSON | None = None
    if choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    elif isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            result = {"type": "tool", "name": function["name"]}
    if parallel_tool_calls is False:
        result = result or {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result


def build_messages_request(deployment: Deployment, body: JSON, *, stream: bool) -> JSON:
    """The Messages API body for an OpenAI chat body (unknown OpenAI params dropped)."""
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid_request("n > 1 is not supported for this provider.", param="n")
    system, messages = translate_messages(body.get("messages"))
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    payload: JSON = {
        "model": deployment.upstream_model,
        "messages": messages,
        "max_tokens": max_tokens or deployment.max_output_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        payload["system"] = system
    tools = translate_tools(body.get("tools"))
    if tools:
        payload["tools"] = tools
        choice = translate_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            payload["tool_choice"] = choice
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        payload["temperature"] = min(float(temperature), MAX_TEMPERATURE)
    if isinstance(body.get("top_p"), int | float):
        payload["top_p"] = body["top_p"]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    if stops:
        payload["stop_sequences"] = stops
    if isinstance(body.get("user"), str) and body["user"]:
        payload["metadata"] = {"user_id": body["user"]}
    if stream:
        payload["stream"] = True
    return payload


MAX_BREAKPOINTS = 4  # Anthropic's limit of cache_control blocks per request


def _count_breakpoints(payload: JSON) -> int:
    blocks: list[object] = [*(payload.get("tools") or [])]
    system = payload.get("system")
    blocks += system if isinstance(system, list) else []
    for message in payload.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        blocks += content if isinstance(content, list) else []
    return sum(1 for block in blocks if isinstance(block, dict) and block.get("cache_control"))


def _mark_message(message: JSON) -> bool:
    """Put a breakpoint on the message's last block (False when it has none or already one)."""
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list) or not content or not isinstance(content[-1], dict):
        return False
    if any(isinstance(b, dict) and b.get("cache_control") for b in content):
        return False
    if content[-1].get("type") == "thinking":
        return False
    message["content"] = [*content[:-1], {**content[-1], "cache_control": dict(EPHEMERAL)}]
    return True


def apply_cache_control(payload: JSON, *, enabled: bool) -> JSON:
    """Mark the stable prefixes as cacheable, within Anthropic's limit of four breakpoints.

    In order, while fewer than ``MAX_BREAKPOINTS`` blocks carry one (a
    breakpoint the request already has is kept and counted): the last tool,
    the last system block and, in a conversation of several messages, the
    final message (so the next turn can read this one's whole conversation)
    and the previous user turn (the breakpoint the previous request wrote, so
    this one reads it). Returns ``payload``
    unchanged when not ``enabled``; mutates and returns ``payload``.
    """
    if not enabled:
        return payload
    budget = MAX_BREAKPOINTS - _count_breakpoints(payload)
    tools = payload.get("tools")
    if budget > 0 and isinstance(tools, list) and tools and not tools[-1].get("cache_control"):
        tools[-1] = {**tools[-1], "cache_control": dict(EPHEMERAL)}
        budget -= 1
    system = payload.get("system")
    if isinstance(system, str):
        system = payload["system"] = [{"type": "text", "text": system}]
    if budget > 0 and isinstance(system, list) and system and not system[-1].get("cache_control"):
        system[-1] = {**system[-1], "cache_control": dict(EPHEMERAL)}
        budget -= 1
    messages = [m for m in payload.get("messages") or [] if isinstance(m, dict)]
    if len(messages) < 2:  # a one-off question: writing it to the cache (1.25x) would only cost more
        return payload
    if budget > 0 and _mark_message(messages[-1]):
        budget -= 1
    earlier_users = [m for m in messages[:-1] if m.get("role") == "user"]
    if budget > 0 and earlier_users:
        _mark_message(earlier_users[-1])
    return payload


# --------------------------------------------------------------------------- response


def finish_reason(stop_reason: object) -> str | None:
    """Anthropic ``stop_reason`` → OpenAI ``finish_reason``."""
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(str(stop_reason), "stop")


@dataclass(slots=True)
class AnthropicUsage:
    """Anthropic's token counts; prompt tokens are the sum of the three input kinds."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def update(self, data: object) -> bool:
        """Take the counts present in an Anthropic ``usage`` object; True if any was."""
        if not isinstance(data, dict):
            return False
        seen = False
        for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, value)
                seen = True
        return seen

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def to_usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.output_tokens,
            cached_prompt_tokens=self.cache_read_input_tokens,
            cache_write_tokens=self.cache_creation_input_tokens,
        )

    def to_openai(self) -> JSON:
        """OpenAI ``usage`` JSON, plus ``cache_creation_input_tokens`` as an extra field."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.prompt_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read_input_tokens},
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


def _tool_call(block: JSON) -> JSON:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()},
    }


def parse_messages_response(raw: bytes, *, model: str, created: int) -> Completion:
    """A Messages API answer → ``Completion`` with an OpenAI ``chat.completion`` body."""
    data = orjson.loads(raw)
    blocks = data.get("content") or []
    text = "".join(b.get("text") or "" for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    tool_calls = [_tool_call(b) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
    counts = AnthropicUsage()
    has_usage = counts.update(data.get("usage"))
    return chat_shapes.completion(
        id=data.get("id"),
        created=created,
        model=model,
        text=text,
        calls=tool_calls,
        finish=finish_reason(data.get("stop_reason")),
        usage=counts.to_usage() if has_usage else None,
        usage_body=counts.to_openai(),
    )

"""Validation of inbound ``/v1/chat/completions`` bodies.

Checks the shape OpenAI's API checks (so clients get the same 400s they would
get upstream) and separates the fields the gateway owns (``skill``,
``smart_routing``, ``provider``), which are never forwarded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from caching.keys import KeyMaterial, key_material
from gateway_platform.errors import GatewayError, invalid_request
from providers.adapters.base import NativeRequest
from providers.adapters.tokens import PromptFacts, prompt_facts, prompt_token_bound, raw_token_bound

GATEWAY_FIELDS = ("skill", "smart_routing", "provider")
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class Passthrough:
    """A request that may go to an upstream speaking the client's API unchanged."""

    request: NativeRequest
    # The translated messages as parsed: a body still holding this very list was not rewritten.
    parsed_messages: object


@dataclass(slots=True)
class ChatRequest:
    body: dict[str, Any]  # what is forwarded upstream (model is replaced per deployment)
    model: str
    stream: bool
    include_usage: bool
    max_tokens: int | None
    skill: str | None = None
    smart_routing: bool | None = None
    provider: str | None = None
    # The size of the raw body ``body`` was parsed from (None for translated bodies: Anthropic, Responses).
    raw_size: int | None = None
    _parsed: dict[str, Any] | None = field(default=None, repr=False)  # ``body`` as parsed from the raw bytes
    _facts: tuple[dict[str, Any], PromptFacts] | None = field(default=None, repr=False)
    _material: tuple[dict[str, Any], KeyMaterial] | None = field(default=None, repr=False)
    # The client's body in its own API, sent unchanged to upstreams that speak it (pass-through).
    native: Passthrough | None = None

    def facts(self) -> PromptFacts:
        """The body's ``PromptFacts``, gathered once per body (a skill or a summary replaces the body)."""
        if self._facts is None or self._facts[0] is not self.body:
            self._facts = (self.body, prompt_facts(self.body))
        return self._facts[1]

    def key_material(self, body: dict[str, Any]) -> KeyMaterial:
        """The response cache's ``KeyMaterial`` of ``body`` (this request's body), computed once per body.

        Only asked for when the cache applies; the leading system messages were counted by ``facts``.
        """
        if self._material is None or self._material[0] is not body:
            lead = self.facts().system_lead if body is self.body else None
            self._material = (body, key_material(body, system_lead=lead))
        return self._material[1]

    def token_bound(self) -> int:
        """An upper bound on the prompt tokens (``prompt_token_bound``), from the raw size while it applies."""
        if self.raw_size is not None and self._parsed is self.body:
            return raw_token_bound(self.raw_size)
        return prompt_token_bound(self.body)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    if not raw.strip():
        raise invalid_request("The request body is empty; send a JSON object.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    return data


def _expect(data: dict[str, Any], name: str, kinds: type | tuple[type, ...], label: str) -> Any:
    value = data.get(name)
    # bool is an int subclass; a boolean where a number belongs is still a type error.
    if value is not None and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds))):
        raise invalid_request(f"Invalid type for '{name}': expected {label}.", param=name)
    return value


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _validate_messages(messages: Any) -> None:
    if messages is None:
        raise invalid_request("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise invalid_request("Invalid type for 'messages': expected an array of message objects.", param="messages")
    if not messages:
        raise invalid_request("'messages' must contain at least one message.", param="messages")
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid_request(f"Invalid type for '{param}': expected an object.", param=param)
        role = message.get("role")
        if role not in ROLES:
            raise invalid_request(
                f"Invalid value for '{param}.role': expected one of {', '.join(sorted(ROLES))}.",
                param=f"{param}.role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise invalid_request(
                f"Invalid type for '{param}.content': expected a string or an array of content parts.",
                param=f"{param}.content",
            )
        calls = message.get("tool_calls")
        # Every upstream translation iterates these: a number or a string here was a 500 (Anthropic, Ollama).
        if calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
            raise invalid_request(
                f"Invalid type for '{param}.tool_calls': expected an array of tool call objects.",
                param=f"{param}.tool_calls",
            )


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Validate a chat completion body; raise a 400 ``GatewayError`` naming the bad field."""
    data = parse_json_object(raw)
    model = data.get("model")
    if model is None:
        raise invalid_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("Invalid type for 'model': expected a non-empty string.", param="model")
    _validate_messages(data.get("messages"))
    stream = _expect(data, "stream", bool, "a boolean") or False
    options = _expect(data, "stream_options", dict, "an object") or {}
    if options and not stream:
        raise invalid_request("'stream_options' is only allowed when 'stream' is true.", param="stream_options")
    include_usage = _expect(options, "include_usage", bool, "a boolean") or False
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = _expect(data, name, int, "an integer")
        if value is not None and value < 1:
            raise invalid_request(f"Invalid value for '{name}': expected an integer of at least 1.", param=name)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        _expect(data, name, (int, float), "a number")
    _expect(data, "tools", list, "an array")
    _expect(data, "stop", (str, list), "a string or an array of strings")
    provider = _expect(data, "provider", str, "a string")
    skill = _expect(data, "skill", str, "a string")
    smart = _expect(data, "smart_routing", bool, "a boolean")
    body = {k: v for k, v in data.items() if k not in GATEWAY_FIELDS}
    max_tokens = data.get("max_completion_tokens") or data.get("max_tokens")
    return ChatRequest(
        body=body,
        model=model.strip(),
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        skill=skill,
        smart_routing=smart,
        provider=provider,
        raw_size=len(raw),
        _parsed=body,
    )


__all__ = ["ChatRequest", "GatewayError", "parse_chat_request", "parse_json_object"]

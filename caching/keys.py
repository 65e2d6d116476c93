"""Cache keys: the namespace, the context hash and the exact key of a chat request (pure functions).

- **namespace**: tenant, resolved tier or model, skill, the leading system /
  developer messages, the tool definitions and the client's state key
  (``X-Gateway-Cache-Key`` or ``metadata.cache_key``). Entries never match
  across namespaces.
- **context hash**: every turn before the last user message, plus the sampling
  parameters that change the answer. The semantic layer only forgives the
  wording of the last user message, so everything else must be identical.
- **exact key**: namespace, context hash and the last user message verbatim.

The last user message is the semantic layer's prompt; when the request does
not end with a plain-text user message (e.g. it ends with a tool result),
``prompt_text`` is empty and only the exact layer applies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

EXACT_PREFIX = "gwcache:x"
SYSTEM_ROLES = frozenset({"system", "developer"})
# Request fields that change what the model answers; everything else (stream,
# stream_options, user, metadata, store, ...) does not.
ANSWER_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "tool_choice",
    "parallel_tool_calls",
    "function_call",
    "reasoning_effort",
    "verbosity",
    "modalities",
    "prediction",
    "web_search_options",
)
TOOL_FIELDS = ("tools", "functions")
MAX_CLIENT_KEY = 200


@dataclass(frozen=True, slots=True)
class CacheKeys:
    namespace: str
    context_hash: str
    exact_key: str
    prompt_text: str  # '' when the semantic layer does not apply


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """What the keys of a request read from its body alone, serialised and hashed once (``key_material``).

    A request may be keyed for more than one route (the cache probe sent with admission, a lookup
    after the route changed); each ``cache_keys`` call then only adds tenant, route, skill and
    client key to these bytes instead of normalising and serialising the messages again.
    """

    system: bytes  # canonical JSON of the normalised leading system / developer messages
    tools: bytes  # canonical JSON of the tool definitions
    context_hash: str
    prompt_text: str  # '' when the semantic layer does not apply


SORTED = orjson.OPT_SORT_KEYS


def digest(value: object) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(orjson.dumps(value, option=SORTED)).hexdigest()


def _content(content: object) -> object:
    """Message content with text stripped at the ends; all-text part lists collapse to one string."""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "\n".join(p["text"] for p in content).strip()
    return content


def normalise_message(message: object) -> object:
    """A message with its content normalised (other fields kept, key order irrelevant).

    A message whose content is already normal is returned as it is (it serialises the same).
    """
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    normal = _content(content)
    if normal is content and "content" in message:
        return message
    return {**message, "content": normal}


def client_cache_key(headers: dict[bytes, bytes], body: dict[str, Any]) -> str:
    """The client's state key: ``X-Gateway-Cache-Key``, else ``metadata.cache_key`` ('' when neither)."""
    header = headers.get(b"x-gateway-cache-key", b"").decode("latin-1").strip()
    if header:
        return header[:MAX_CLIENT_KEY]
    metadata = body.get("metadata")
    value = metadata.get("cache_key") if isinstance(metadata, dict) else None
    return str(value)[:MAX_CLIENT_KEY] if value is not None else ""


def _role(message: object) -> object:
    return message.get("role") if isinstance(message, dict) else None


def split_messages(messages: list[Any], *, lead: int | None = None) -> tuple[list[Any], list[Any], str]:
    """(leading system messages, turns before the prompt, prompt text) of normalised messages.

    ``lead``: the number of leading system / developer messages when already counted
    (``PromptFacts.system_lead``).
    """
    normalised = [normalise_message(m) for m in messages]
    if lead is None:
        lead = 0
        while lead < len(normalised) and _role(normalised[lead]) in SYSTEM_ROLES:
            lead += 1
    system, turns = normalised[:lead], normalised[lead:]
    last = turns[-1] if turns else None
    plain_user = isinstance(last, dict) and _role(last) == "user" and set(last) <= {"role", "content"}
    if plain_user and isinstance(last["content"], str) and last["content"]:  # type: ignore[index]
        return system, turns[:-1], last["content"]  # type: ignore[index]
    return system, turns, ""


NO_TOOLS = orjson.dumps(dict.fromkeys(TOOL_FIELDS), option=SORTED)


def _tools(body: dict[str, Any]) -> bytes:
    """Canonical JSON of the tool definitions (most requests have none: no serialisation)."""
    if body.get("tools") is None and body.get("functions") is None:
        return NO_TOOLS
    return orjson.dumps({name: body.get(name) for name in TOOL_FIELDS}, option=SORTED)


def key_material(body: dict[str, Any], *, system_lead: int | None = None) -> KeyMaterial:
    """The ``KeyMaterial`` of a chat body (pure); ``system_lead`` as counted by ``prompt_facts``."""
    messages = body.get("messages")
    system, prior, prompt = split_messages(messages if isinstance(messages, list) else [], lead=system_lead)
    params = {name: body[name] for name in ANSWER_PARAMS if body.get(name) is not None}
    return KeyMaterial(
        system=orjson.dumps(system, option=SORTED),
        tools=_tools(body),
        context_hash=digest({"prior": prior, "params": params}),
        prompt_text=prompt,
    )


def cache_keys(
    *,
    tenant_id: int,
    route_name: str,
    skill: str,
    body: dict[str, Any],
    client_key: str = "",
    material: KeyMaterial | None = None,
) -> CacheKeys:
    """The keys of one chat request (``body`` as the client sent it, gateway fields removed).

    ``material``: ``key_material(body)`` when already computed for this body (the keys are the same).
    """
    material = material if material is not None else key_material(body)
    namespace = digest(
        {
            "tenant": tenant_id,
            "route": route_name,
            "skill": skill,
            "system": orjson.Fragment(material.system),
            "tools": orjson.Fragment(material.tools),
            "client_key": client_key,
        }
    )
    context = material.context_hash
    exact = digest({"namespace": namespace, "context": context, "prompt": material.prompt_text})
    return CacheKeys(
        namespace=namespace,
        context_hash=context,
        exact_key=f"{EXACT_PREFIX}:{tenant_id}:{exact}",
        prompt_text=material.prompt_text,
    )

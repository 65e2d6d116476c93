"""Anthropic Messages requests that may reach Anthropic upstreams unchanged (pass-through, pure).

A ``/v1/messages`` body is validated and translated as always (other upstreams
need the translation, and failover may go to them); the client's own body
rides along as a ``NativeRequest``, so an Anthropic deployment receives it as
it was sent — thinking settings and blocks with their signatures,
``output_config``, ``context_management``, ``cache_control`` placements, fields
this gateway does not know yet — with only ``model`` replaced, plus the
client's ``anthropic-version`` / ``anthropic-beta`` headers and query string
(``?beta=true``). The gateway's own fields (``skill``, ``smart_routing``,
``provider``) never go upstream. When passing through is ruled out for a
request (see ``ChatPlan.native_for``), the translation is used.
"""

from __future__ import annotations

from providers.adapters.anthropic import FORWARDED_HEADERS, MESSAGES_API
from providers.adapters.base import NativeRequest
from serving.anthropic.translate import translate_messages_request
from serving.requests import GATEWAY_FIELDS, ChatRequest, Passthrough, parse_json_object


def native_request(data: dict[str, object], headers: dict[bytes, bytes], query: bytes) -> NativeRequest:
    """The client's Messages body, headers and query as an Anthropic upstream should get them."""
    forwarded = tuple(
        (name, headers[name.encode()].decode("latin-1")) for name in FORWARDED_HEADERS if name.encode() in headers
    )
    body = {k: v for k, v in data.items() if k not in GATEWAY_FIELDS}
    return NativeRequest(api=MESSAGES_API, body=body, headers=forwarded, query=query.decode("latin-1"))


def parse_with_passthrough(raw: bytes, headers: dict[bytes, bytes], query: bytes) -> ChatRequest:
    """The translated request (400 on malformed input) carrying the client's own body for pass-through."""
    data = parse_json_object(raw)
    request = translate_messages_request(data)
    request.native = Passthrough(native_request(data, headers, query), request.body["messages"])
    return request

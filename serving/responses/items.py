"""``GET /v1/responses/{id}/input_items``: a stored response's input items, paginated as OpenAI does (pure).

The items are everything that went into the response: the stored
conversation it continued (``previous_response_id``), then its own ``input``
— not its output. Each item is shown as the API lists it: messages with
``type``, ``status`` and content parts (a string becomes one ``input_text``,
or ``output_text`` for an assistant turn), and an ``id``; items sent without
one get an id derived from the response id and their position, so cursors
stay valid between calls. Query: ``limit`` (1-100, default 20), ``order``
(``asc`` or ``desc``, default ``desc``: newest first), ``after`` (an item id:
the page starts after it), ``include`` (accepted; stored items are whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from gateway_platform.errors import invalid_request

JSON = dict[str, Any]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


@dataclass(frozen=True, slots=True)
class ItemsQuery:
    limit: int = DEFAULT_LIMIT
    order: str = "desc"
    after: str | None = None


def parse_query(query_string: bytes) -> ItemsQuery:
    """The list parameters; a 400 naming the parameter when one is malformed."""
    params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    limit = DEFAULT_LIMIT
    if "limit" in params:
        raw = params["limit"][-1]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise invalid_request(
                f"Invalid 'limit': expected an integer between 1 and {MAX_LIMIT}, got '{raw[:40]}'.", param="limit"
            )
        limit = int(raw)
    order = params.get("order", ["desc"])[-1]
    if order not in ("asc", "desc"):
        raise invalid_request(f"Invalid 'order': expected 'asc' or 'desc', got '{order[:40]}'.", param="order")
    after = params.get("after", [None])[-1] or None
    return ItemsQuery(limit=limit, order=order, after=after)


def _listed(item: JSON, response_id: str, index: int) -> JSON:
    kind = item.get("type") or ("message" if "role" in item else "item")
    listed = {**item, "type": kind}
    if kind == "message":
        content = item.get("content")
        if isinstance(content, str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            listed["content"] = [{"type": part, "text": content}]
        listed.setdefault("status", "completed")
    if not isinstance(listed.get("id"), str) or not listed["id"]:
        prefix = ID_PREFIXES.get(str(kind), "item")
        listed["id"] = f"{prefix}_{response_id.removeprefix('resp_')}_{index}"
    return listed


def input_items(response_id: str, conversation: list[JSON], output_items: int) -> list[JSON]:
    """The items that went into a stored response (its conversation less its own output), oldest first."""
    inputs = conversation[: len(conversation) - output_items] if output_items else conversation
    return [_listed(item, response_id, i) for i, item in enumerate(inputs) if isinstance(item, dict)]


def page(items: list[JSON], query: ItemsQuery) -> JSON:
    """One page of ``items`` (oldest first) as OpenAI's list object; an unknown ``after`` is a 400."""
    ordered = items if query.order == "asc" else items[::-1]
    start = 0
    if query.after is not None:
        ids = [item["id"] for item in ordered]
        if query.after not in ids:
            raise invalid_request(f"No input item with id '{query.after[:80]}' in this response.", param="after")
        start = ids.index(query.after) + 1
    data = ordered[start : start + query.limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + query.limit < len(ordered),
    }

"""Today's Messages API fields beyond the basics: validated, then translated or dropped (pure).

What the current ``anthropic`` SDK and Claude Code send is accepted; what is
really malformed is a 400 naming the field:

- ``thinking``: ``{"type": "enabled", "budget_tokens": N}``, ``adaptive``
  (optional ``display``), ``disabled`` or ``between_tools``. A chat upstream has
  no equivalent: dropped. Assistant ``thinking`` / ``redacted_thinking`` blocks
  in the history (with their signatures) are accepted and dropped the same way.
- ``output_config``: ``effort`` (low … max) is dropped; ``format`` (a JSON
  schema) becomes the chat ``response_format``.
- ``context_management``: an object with ``edits``; dropped (the gateway sends
  the history it gets).
- ``role: "system"`` messages inside ``messages`` become system messages in
  place; their other fields (Claude Code puts ``output_config`` there) are ignored.
- Blocks that record Anthropic server tools (``server_tool_use``,
  ``web_search_tool_result``, ``code_execution_tool_result``, …) and
  ``container_upload`` are dropped; ``search_result`` blocks become text.
- ``cache_control`` is accepted on every block, tool and message and not forwarded.
"""

from __future__ import annotations

from typing import Any

from gateway_platform.errors import invalid_request

JSON = dict[str, Any]

THINKING_TYPES = frozenset({"enabled", "adaptive", "disabled", "between_tools"})
THINKING_DISPLAYS = frozenset({"summarized", "omitted"})
EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
# Content blocks a chat upstream cannot use and never produced: accepted and dropped.
DROPPED_BLOCKS = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "mcp_tool_use",
        "mcp_tool_result",
    }
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_thinking(thinking: object) -> None:
    """400 unless ``thinking`` is one of the configurations the API defines."""
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if not isinstance(thinking, dict) or kind not in THINKING_TYPES:
        raise invalid_request(
            "Invalid 'thinking': expected an object with type enabled, adaptive, disabled or between_tools.",
            param="thinking.type",
        )
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not _is_int(budget) or budget < 1:
            raise invalid_request(
                "Invalid 'thinking.budget_tokens': expected a positive integer.", param="thinking.budget_tokens"
            )
    display = thinking.get("display")
    if display is not None and display not in THINKING_DISPLAYS:
        raise invalid_request("Invalid 'thinking.display': expected summarized or omitted.", param="thinking.display")


def output_format(output_config: object) -> JSON | None:
    """Validate ``output_config``; the chat ``response_format`` its ``format`` asks for, if any."""
    if output_config is None:
        return None
    if not isinstance(output_config, dict):
        raise invalid_request("Invalid type for 'output_config': expected an object.", param="output_config")
    effort = output_config.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise invalid_request(
            "Invalid 'output_config.effort': expected low, medium, high, xhigh or max.", param="output_config.effort"
        )
    fmt = output_config.get("format")
    if fmt is None:
        return None
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(schema, dict):
        raise invalid_request(
            "Invalid 'output_config.format': expected {type: json_schema, schema: {...}}.", param="output_config.format"
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def validate_context_management(value: object) -> None:
    if value is None:
        return
    edits = value.get("edits") if isinstance(value, dict) else None
    if not isinstance(value, dict) or (edits is not None and not isinstance(edits, list)):
        raise invalid_request(
            "Invalid 'context_management': expected an object with an 'edits' array.", param="context_management"
        )


def search_result_text(block: JSON, param: str) -> str:
    """A ``search_result`` block as plain text (title, source, then its text blocks)."""
    content = block.get("content")
    if not isinstance(content, list):
        raise invalid_request(f"Invalid type for '{param}.content': expected an array.", param=f"{param}.content")
    texts = [c["text"] for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
    header = " — ".join(str(block[k]) for k in ("title", "source") if isinstance(block.get(k), str))
    return "\n".join([header, *texts]) if header else "\n".join(texts)

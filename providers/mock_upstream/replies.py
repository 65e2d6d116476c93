"""Format-neutral, deterministic reply logic for the mock upstream.

Each wire format parses its request into a :class:`Conversation`;
:func:`build_reply` turns it (plus the request's directives) into a
:class:`Reply`, which the format modules render as JSON bodies or stream plans.
Everything here is pure and synchronous.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from providers.mock_upstream.directives import Directives, strip_markers

FILLER_WORDS: tuple[str, ...] = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
DEFAULT_EMBEDDING_DIMENSIONS = 8
REPLY_QUOTE_CHARS = 60
TOOL_QUERY_CHARS = 40

FinishReason = Literal["stop", "length", "tool_calls"]

# The replies built while serving one request (set by the server): its ledger of tokens served.
built_replies: ContextVar[list[Reply] | None] = ContextVar("mock_built_replies", default=None)


class BadRequest(Exception):
    """The request is malformed; rendered as a 400 in the route's error shape."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass
class Conversation:
    """What the reply logic needs to know about a request, whatever its format."""

    texts: list[str] = field(default_factory=list)
    """All prompt text (system, messages, tool results): tokens and directives."""
    last_user_text: str = ""
    tool_result: str | None = None
    """Text of the tool result when the last message is one."""
    tool_names: list[str] = field(default_factory=list)
    forced_tool: str | None = None
    """Tool forced by ``tool_choice`` (a named function, ``required``, ``any``)."""
    tools_disabled: bool = False
    """``tool_choice`` is ``none``."""
    suffix: str | None = None
    """Legacy completions fill-in-the-middle suffix."""
    tool_results: list[str] = field(default_factory=list)
    """Every tool result in the conversation, in order (not only a trailing one)."""

    @property
    def prompt_chars(self) -> int:
        return sum(len(text) for text in self.texts)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    arguments_json: str
    pieces: list[str]


@dataclass
class Reply:
    text: str
    pieces: list[str]
    """Streamed content pieces: reply words, or the tool call's argument JSON pieces."""
    finish: FinishReason
    prompt_tokens: int
    tool_call: ToolCall | None = None
    cached_prompt_tokens: int = 0  # OpenAI-style automatic prefix caching (``anthropic_format.PromptCache``)

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class StreamPlan:
    """Encoded stream events. ``drop_after`` counts only ``content`` chunks."""

    content_type: str
    preamble: list[bytes] = field(default_factory=list)
    content: list[bytes] = field(default_factory=list)
    trailer: list[bytes] = field(default_factory=list)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def tokens_for_chars(chars: int) -> int:
    """Prompt token estimate: ``ceil(chars / 4)``, at least 1."""
    return max(1, math.ceil(chars / 4))


def split_words(text: str) -> list[str]:
    """Split into words, each with its leading whitespace (joins back to ``text``)."""
    return re.findall(r"\s*\S+", text)


def split_json(text: str) -> list[str]:
    """Split JSON text into pieces of at most 8 chars (at least 3 pieces)."""
    size = max(1, min(8, len(text) // 3))
    return [text[i : i + size] for i in range(0, len(text), size)]


def filler(count: int) -> str:
    return " ".join(FILLER_WORDS[i % len(FILLER_WORDS)] for i in range(count))


def _reply_text(conversation: Conversation, directives: Directives) -> str:
    if directives.call is not None and conversation.tool_results and directives.reply is not None:
        text = directives.reply
    elif directives.call is not None and conversation.tool_results and conversation.tool_result is None:
        text = "Tool result received: " + conversation.tool_results[-1][:REPLY_QUOTE_CHARS]
    elif conversation.tool_result is not None:
        text = "Tool result received: " + conversation.tool_result[:REPLY_QUOTE_CHARS]
    elif directives.refuse:
        return REFUSAL_TEXT
    elif directives.reply is not None:
        text = directives.reply
    elif conversation.suffix is not None:
        text = "Mock fill between: " + conversation.last_user_text[-30:] + " ... " + conversation.suffix[:30]
    else:
        text = "Mock reply to: " + conversation.last_user_text[:REPLY_QUOTE_CHARS]
    if directives.words:
        text = text.rstrip() + " " + filler(directives.words)
    return text.rstrip()


def _tool_to_call(conversation: Conversation, directives: Directives) -> str | None:
    if conversation.tools_disabled:
        return None
    if conversation.forced_tool:
        return conversation.forced_tool
    if conversation.tool_result is not None or directives.refuse:
        return None
    if directives.call is not None:
        # One round trip: once the agent sent any tool result, answer instead.
        offered = directives.call in conversation.tool_names
        return directives.call if offered and not conversation.tool_results else None
    if directives.tool and conversation.tool_names:
        return conversation.tool_names[0]
    return None


def build_reply(
    conversation: Conversation,
    directives: Directives,
    *,
    max_tokens: int | None = None,
    tool_id_prefix: str = "call_",
) -> Reply:
    """The deterministic reply for a request.

    Precedence: a forced ``tool_choice`` > a trailing tool result > ``refuse`` >
    the ``tool`` directive (when tools are offered) > ``reply`` > ``Mock reply to: ...``.
    """
    prompt_tokens = tokens_for_chars(conversation.prompt_chars)
    tool_name = _tool_to_call(conversation, directives)
    if tool_name is not None:
        if directives.call == tool_name and directives.args is not None:
            arguments = json.loads(directives.args)
        else:
            arguments = {"query": strip_markers(conversation.last_user_text)[:TOOL_QUERY_CHARS]}
        arguments_json = json.dumps(arguments, ensure_ascii=False)
        call = ToolCall(
            id=new_id(tool_id_prefix),
            name=tool_name,
            arguments=arguments,
            arguments_json=arguments_json,
            pieces=split_json(arguments_json),
        )
        return _built(
            Reply(
                text="",
                pieces=call.pieces,
                finish="tool_calls",
                prompt_tokens=prompt_tokens,
                tool_call=call,
            )
        )
    pieces = split_words(_reply_text(conversation, directives))
    finish: FinishReason = "stop"
    if max_tokens is not None and len(pieces) > max(1, max_tokens):
        pieces = pieces[: max(1, max_tokens)]
        finish = "length"
    return _built(Reply(text="".join(pieces), pieces=pieces, finish=finish, prompt_tokens=prompt_tokens))


def _built(reply: Reply) -> Reply:
    built = built_replies.get()
    if built is not None:
        built.append(reply)
    return reply


def embedding_vector(text: str, dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic, L2-normalised vector derived from a hash of ``text``."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        for (word,) in struct.iter_unpack(">I", digest):
            values.append(word / 0xFFFFFFFF * 2.0 - 1.0)
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def encode_base64_floats(vector: list[float]) -> str:
    """OpenAI's ``encoding_format=base64``: little-endian float32 array."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_inputs(raw: object, param: str = "input") -> list[str]:
    """Normalise an embedding ``input`` (string, list of strings or token arrays)."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(item, int) for item in raw):
            return [json.dumps(raw)]
        items: list[str] = []
        for item in raw:
            if isinstance(item, str):
                items.append(item)
            elif isinstance(item, list) and all(isinstance(t, int) for t in item):
                items.append(json.dumps(item))
            else:
                raise BadRequest(f"'{param}' items must be strings or token arrays", param)
        return items
    raise BadRequest(f"'{param}' must be a non-empty string or list", param)


def embedding_dimensions(raw: object) -> int:
    if raw is None:
        return DEFAULT_EMBEDDING_DIMENSIONS
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 8192:
        raise BadRequest("'dimensions' must be an integer between 1 and 8192", "dimensions")
    return raw


def require_model(body: dict[str, object]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    return model


def positive_int_or_none(raw: object, param: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise BadRequest(f"'{param}' must be a positive integer", param)
    return raw

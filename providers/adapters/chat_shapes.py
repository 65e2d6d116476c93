"""The OpenAI chat shapes every translating adapter answers in (pure, no I/O).

Anthropic, Bedrock, Gemini, Ollama and the Responses pass-through's chat
translation all turn their upstream's answer into ``chat.completion`` bodies
and ``chat.completion.chunk`` events; these builders keep those shapes in one
place so the adapters only decide the contents.
"""

from __future__ import annotations

import orjson

from providers.adapters.base import JSON, Completion, StreamChunk, Usage


def usage_json(usage: Usage, *, details: bool = True) -> JSON:
    """OpenAI ``usage`` JSON; ``details`` adds the cache reads (chat shape; legacy completions have none)."""
    out: JSON = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if details:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_prompt_tokens}
    return out


def completion(
    *,
    id: object,
    created: int,
    model: str,
    text: str,
    calls: list[JSON],
    finish: str | None,
    usage: Usage | None,
    usage_body: JSON | None = None,
    raw: bytes | None = None,
) -> Completion:
    """A whole answer as a ``chat.completion`` body; ``usage_body`` overrides ``usage_json(usage)``."""
    message: JSON = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    body: JSON = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage_body if usage_body is not None else usage_json(usage)
    return Completion(body=orjson.dumps(body), usage=usage, text=text, finish_reason=finish, raw=raw)


def chunk(id: str, created: int, model: str, delta: JSON, finish: str | None = None, *, text: str = "") -> StreamChunk:
    """One ``chat.completion.chunk`` event carrying ``delta`` (and the finish reason, if any)."""
    payload = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return StreamChunk(data=orjson.dumps(payload), text=text, finish_reason=finish)


def usage_chunk(id: str, created: int, model: str, usage: Usage, usage_body: JSON | None = None) -> StreamChunk:
    """The closing usage-only chunk (``choices`` empty), as ``stream_options.include_usage`` asks."""
    payload = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_body if usage_body is not None else usage_json(usage),
    }
    return StreamChunk(data=orjson.dumps(payload), usage=usage, usage_only=True)

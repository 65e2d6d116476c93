"""Request builders: validate a request body and prepare its (deferred) answer.

One builder per LLM route. Each parses the body with its format module, works
out the directives for the requested model, and returns a :class:`Prepared`
whose ``render`` builds the JSON body or stream plan once faults have been
applied. No aiohttp or Django here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.mock_upstream import (
    anthropic_format,
    bedrock_format,
    gemini_format,
    ollama_format,
    openai_format,
    responses_format,
)
from providers.mock_upstream.anthropic_format import PromptCache
from providers.mock_upstream.directives import Directives, parse_directives
from providers.mock_upstream.replies import (
    BadRequest,
    StreamPlan,
    build_reply,
    embedding_dimensions,
    embedding_inputs,
    new_id,
    require_model,
)

JSON = dict[str, Any]


@dataclass
class Prepared:
    """A validated request: what to record, which faults apply, how to answer."""

    model: str
    stream: bool
    directives: Directives
    render: Callable[[], JSON | StreamPlan]


def openai_chat(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    conversation, max_tokens = openai_format.parse_chat(body)
    directives = parse_directives(conversation.texts, model)
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    prefixes = anthropic_format.openai_prefixes(body)

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens, tool_id_prefix="call_")
        reply.cached_prompt_tokens = cache.automatic(model, prefixes, reply.prompt_tokens)
        ids: JSON = {
            "model": model,
            "completion_id": new_id("chatcmpl-"),
            "created": int(time.time()),
        }
        if stream:
            return openai_format.chat_stream_plan(
                reply,
                **ids,
                include_usage=include_usage,
                with_usage=not directives.no_usage,
            )
        return openai_format.chat_completion_body(reply, **ids, with_usage=not directives.no_usage)

    return Prepared(model, stream, directives, render)


def openai_completion(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    conversation, max_tokens = openai_format.parse_completion(body)
    directives = parse_directives(conversation.texts, model)
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens)
        ids: JSON = {
            "model": model,
            "completion_id": new_id("cmpl-"),
            "created": int(time.time()),
        }
        if stream:
            return openai_format.text_completion_stream_plan(
                reply,
                **ids,
                include_usage=include_usage,
                with_usage=not directives.no_usage,
            )
        return openai_format.text_completion_body(reply, **ids, with_usage=not directives.no_usage)

    return Prepared(model, stream, directives, render)


def openai_embeddings(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    inputs = embedding_inputs(body.get("input"))
    dimensions = embedding_dimensions(body.get("dimensions"))
    encoding_format = body.get("encoding_format") or "float"
    if encoding_format not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    directives = parse_directives(inputs, model)

    def render() -> JSON:
        return openai_format.embeddings_body(
            inputs,
            model=model,
            dimensions=dimensions,
            encoding_format=encoding_format,
            with_usage=not directives.no_usage,
        )

    return Prepared(model, False, directives, render)


def anthropic_messages(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    conversation, max_tokens, cache_info = anthropic_format.parse_messages(body)
    anthropic_format.check_thinking_blocks(body)
    thinking = anthropic_format.thinking_blocks(body, conversation)
    directives = parse_directives(conversation.texts, model)
    stream = bool(body.get("stream"))

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens, tool_id_prefix="toolu_")
        cache_usage = cache.usage(cache_info, reply.prompt_tokens)
        kwargs: JSON = {
            "model": model,
            "message_id": new_id("msg_"),
            "cache_usage": cache_usage,
            "with_usage": not directives.no_usage,
            "thinking": thinking,
        }
        if stream:
            return anthropic_format.message_stream_plan(reply, **kwargs)
        return anthropic_format.message_body(reply, **kwargs)

    return Prepared(model, stream, directives, render)


def openai_responses(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    conversation, max_tokens = responses_format.parse_request(body)
    directives = parse_directives(conversation.texts, model)
    stream = bool(body.get("stream"))

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens)
        kwargs: JSON = {"model": model, "with_usage": not directives.no_usage}
        if stream:
            return responses_format.stream_plan(body, reply, **kwargs)
        return responses_format.whole(body, reply, **kwargs)

    return Prepared(model, stream, directives, render)


def ollama_created_at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ollama_chat(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    conversation, max_tokens = ollama_format.parse_chat(body)
    directives = parse_directives(conversation.texts, model)
    stream = body.get("stream", True) is not False  # Ollama streams by default

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens)
        kwargs: JSON = {
            "model": model,
            "created_at": ollama_created_at(),
            "with_usage": not directives.no_usage,
        }
        if stream:
            return ollama_format.chat_stream_plan(reply, **kwargs)
        return ollama_format.chat_body(reply, **kwargs)

    return Prepared(model, stream, directives, render)


def ollama_generate(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    conversation, max_tokens = ollama_format.parse_generate(body)
    directives = parse_directives(conversation.texts, model)
    stream = body.get("stream", True) is not False  # Ollama streams by default

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens)
        kwargs: JSON = {
            "model": model,
            "created_at": ollama_created_at(),
            "with_usage": not directives.no_usage,
        }
        if stream:
            return ollama_format.generate_stream_plan(reply, **kwargs)
        return ollama_format.generate_body(reply, **kwargs)

    return Prepared(model, stream, directives, render)


def ollama_embed(body: JSON, cache: PromptCache) -> Prepared:
    model = require_model(body)
    inputs = embedding_inputs(body.get("input"))
    dimensions = embedding_dimensions(body.get("dimensions"))
    directives = parse_directives(inputs, model)

    def render() -> JSON:
        return ollama_format.embed_body(
            inputs,
            model=model,
            dimensions=dimensions,
            with_usage=not directives.no_usage,
        )

    return Prepared(model, False, directives, render)


def gemini_generate(body: JSON, cache: PromptCache, *, model: str, stream: bool) -> Prepared:
    """``generateContent`` / ``streamGenerateContent``: the model and the streaming choice are in the URL."""
    conversation, max_tokens = gemini_format.parse_generate(body)
    gemini_format.check_signatures(body, model)
    directives = parse_directives(conversation.texts, model)

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens)
        kwargs: JSON = {"model": model, "response_id": new_id(""), "with_usage": not directives.no_usage}
        if stream:
            return gemini_format.generate_stream_plan(reply, **kwargs)
        return gemini_format.generate_body(reply, **kwargs)

    return Prepared(model, stream, directives, render)


def bedrock_converse(body: JSON, cache: PromptCache, *, model: str, stream: bool) -> Prepared:
    """``converse`` / ``converse-stream``: the model and the streaming choice are in the URL."""
    conversation, max_tokens = bedrock_format.parse_converse(body)
    directives = parse_directives(conversation.texts, model)

    def render() -> JSON | StreamPlan:
        reply = build_reply(conversation, directives, max_tokens=max_tokens, tool_id_prefix="tooluse_")
        if stream:
            return bedrock_format.converse_stream_plan(reply, with_usage=not directives.no_usage)
        return bedrock_format.converse_body(reply, with_usage=not directives.no_usage)

    return Prepared(model, stream, directives, render)


Builder = Callable[[JSON, PromptCache], Prepared]

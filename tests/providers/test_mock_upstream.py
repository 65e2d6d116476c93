"""The bundled mock upstream, exercised over real HTTP with the official SDKs.

No database: the server is a plain aiohttp app started on a free port per test.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import anthropic
import openai
import pytest
import pytest_asyncio
from aiohttp import web

from providers.mock_upstream import start_mock
from providers.mock_upstream.directives import parse_directives, strip_markers
from providers.mock_upstream.replies import (
    Conversation,
    build_reply,
    embedding_vector,
    split_json,
    split_words,
)

ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the web",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    },
]
ANTHROPIC_TOOLS: list[Any] = [
    {
        "name": "search",
        "description": "Search the web",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
    }
]


def prompt_tokens(*texts: str) -> int:
    return max(1, math.ceil(sum(len(t) for t in texts) / 4))


def word_count(text: str) -> int:
    return len(split_words(text))


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[tuple[str, web.AppRunner]]:
    runner, port = await start_mock(port=0)
    try:
        yield f"http://127.0.0.1:{port}", runner
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def base_url(mock: tuple[str, web.AppRunner]) -> str:
    return mock[0]


@pytest_asyncio.fixture
async def oai(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0) as client:
        yield client


@pytest_asyncio.fixture
async def claude(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="x", max_retries=0) as client:
        yield client


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def events(http: aiohttp.ClientSession, base_url: str) -> list[dict[str, Any]]:
    async with http.get(f"{base_url}/_mock/events") as response:
        assert response.status == 200
        result: list[dict[str, Any]] = await response.json()
        return result


# --------------------------------------------------------------------------- pure logic


def test_directives_parsing_and_model_filter() -> None:
    texts = [
        "system [[mock: delay=0.5 tool]]",
        "hi [[mock: status=500 model=primary]] [[mock: words=3, no_usage=1]]",
        "later wins [[mock: delay=1.5]] bad [[mock: status=abc nonsense=1]]",
    ]
    primary = parse_directives(texts, "primary")
    assert primary.status == 500
    assert primary.delay == 1.5 and primary.tool and primary.words == 3
    assert primary.no_usage
    fallback = parse_directives(texts, "fallback")
    assert fallback.status is None and fallback.delay == 1.5
    assert fallback.as_dict() == {"delay": 1.5, "words": 3, "tool": True, "no_usage": True}
    assert strip_markers("  find [[mock: tool]]  cats ") == "find cats"


def test_reply_rules_are_deterministic() -> None:
    directives = parse_directives(["[[mock: words=4]]"], "m")
    conversation = Conversation(texts=["abc", "Hello [[mock: words=4]]"], last_user_text="Hello [[mock: words=4]]")
    reply = build_reply(conversation, directives)
    assert reply.text == "Mock reply to: Hello [[mock: words=4]] lorem ipsum dolor sit"
    assert reply.pieces[:2] == ["Mock", " reply"]
    assert "".join(reply.pieces) == reply.text
    assert reply.prompt_tokens == prompt_tokens("abc", "Hello [[mock: words=4]]")
    assert reply.completion_tokens == 10 and reply.finish == "stop"
    truncated = build_reply(conversation, directives, max_tokens=3)
    assert truncated.text == "Mock reply to:" and truncated.finish == "length"
    assert len(split_json('{"query": ""}')) >= 3
    vector = embedding_vector("hello", 8)
    assert vector == embedding_vector("hello", 8) != embedding_vector("world", 8)
    assert math.isclose(sum(v * v for v in vector), 1.0)


# --------------------------------------------------------------------------- OpenAI


@pytest.mark.asyncio
async def test_openai_chat_non_stream(oai: openai.AsyncOpenAI) -> None:
    system, user = "Be terse.", "Hello there, how are you doing today?"
    completion = await oai.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
    )
    expected = f"Mock reply to: {user}"
    choice = completion.choices[0]
    assert choice.message.content == expected
    assert choice.finish_reason == "stop"
    assert completion.model == "mock-gpt" and completion.object == "chat.completion"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == prompt_tokens(system, user)
    assert completion.usage.completion_tokens == word_count(expected)
    assert completion.usage.total_tokens == (completion.usage.prompt_tokens + completion.usage.completion_tokens)


@pytest.mark.asyncio
async def test_openai_chat_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    user = "Stream please " * 10 + "[[mock: words=5]]"
    stream = await oai.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": user}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=100,
    )
    pieces: list[str] = []
    finish: list[str] = []
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    text = "".join(pieces)
    assert text == f"Mock reply to: {user[:60]}".rstrip() + " lorem ipsum dolor sit amet"
    assert pieces[1] == " reply"
    assert finish == ["stop"]
    assert usage is not None
    assert usage.completion_tokens == len(pieces)
    assert usage.prompt_tokens == prompt_tokens(user)


@pytest.mark.asyncio
async def test_openai_tool_call_stream_and_tool_result(oai: openai.AsyncOpenAI) -> None:
    user = "[[mock: tool]] What is the weather in Paris?"
    stream = await oai.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": user}],
        tools=TOOLS,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    argument_pieces = 0
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    if delta.function.arguments:
                        argument_pieces += 1
                        call["arguments"] += delta.function.arguments
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"].startswith("call_") and calls[0]["name"] == "search"
    assert argument_pieces >= 3
    assert json.loads(calls[0]["arguments"]) == {"query": "What is the weather in Paris?"}

    follow_up = await oai.chat.completions.create(
        model="mock-gpt",
        messages=[
            {"role": "user", "content": user},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": calls[0]["id"],
                        "type": "function",
                        "function": {"name": "search", "arguments": calls[0]["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "Sunny, 21C"},
        ],
        tools=TOOLS,
    )
    assert follow_up.choices[0].message.content == "Tool result received: Sunny, 21C"
    assert follow_up.choices[0].finish_reason == "stop"


@pytest.mark.asyncio
async def test_openai_forced_tool_choice(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "look it up"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content is None and message.tool_calls
    call = message.tool_calls[0]
    assert call.type == "function" and call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"query": "look it up"}


@pytest.mark.asyncio
async def test_openai_embeddings(oai: openai.AsyncOpenAI) -> None:
    # The SDK asks for base64 by default and decodes it.
    result = await oai.embeddings.create(model="mock-embedding", input=["alpha", "beta"])
    assert [d.index for d in result.data] == [0, 1]
    first = result.data[0].embedding
    assert len(first) == 8
    assert math.isclose(sum(v * v for v in first), 1.0, rel_tol=1e-5)
    assert first == pytest.approx(embedding_vector("alpha", 8), rel=1e-5)
    assert result.usage.prompt_tokens == prompt_tokens("alpha", "beta")

    floats = await oai.embeddings.create(model="mock-embedding", input="alpha", dimensions=16, encoding_format="float")
    assert len(floats.data[0].embedding) == 16
    again = await oai.embeddings.create(model="mock-embedding", input="alpha", dimensions=16, encoding_format="float")
    assert again.data[0].embedding == floats.data[0].embedding


@pytest.mark.asyncio
async def test_openai_legacy_completions_and_models(oai: openai.AsyncOpenAI) -> None:
    plain = await oai.completions.create(model="mock-gpt", prompt="Once upon a time")
    assert plain.choices[0].text == "Mock reply to: Once upon a time"
    fim = await oai.completions.create(
        model="mock-gpt", prompt="def add(a, b):\n    return", suffix="\n\nprint(add(1, 2))"
    )
    assert fim.choices[0].text.startswith("Mock fill between: ")
    assert "print(add(1, 2))" in fim.choices[0].text
    stream = await oai.completions.create(model="mock-gpt", prompt="Count", stream=True)
    text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == "Mock reply to: Count"
    models = await oai.models.list()
    assert "mock-gpt" in [m.id for m in models.data]


@pytest.mark.asyncio
async def test_openai_auth_header_must_be_bearer(base_url: str, http: aiohttp.ClientSession) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(
        f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": "Basic abc"}
    ) as response:
        assert response.status == 401
        error = (await response.json())["error"]
        assert set(error) == {"message", "type", "code", "param"}
    async with http.post(f"{base_url}/v1/chat/completions", json=body) as response:
        assert response.status == 200  # no Authorization at all is fine (local style)
    async with http.post(
        f"{base_url}/v1/chat/completions", json={"messages": []}, headers={"Authorization": "Bearer k"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "model"


# --------------------------------------------------------------------------- Anthropic


@pytest.mark.asyncio
async def test_anthropic_messages_non_stream(claude: anthropic.AsyncAnthropic) -> None:
    user = "Tell me something nice"
    message = await claude.messages.create(
        model="mock-claude",
        max_tokens=256,
        system="You are kind.",
        messages=[{"role": "user", "content": user}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == f"Mock reply to: {user}"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == prompt_tokens("You are kind.", user)
    assert message.usage.output_tokens == word_count(f"Mock reply to: {user}")
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0


@pytest.mark.asyncio
async def test_anthropic_stream_event_sequence(
    claude: anthropic.AsyncAnthropic, base_url: str, http: aiohttp.ClientSession
) -> None:
    user = "Stream it [[mock: words=2]]"
    async with claude.messages.stream(
        model="mock-claude", max_tokens=256, messages=[{"role": "user", "content": user}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == f"Mock reply to: {user} lorem ipsum"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == word_count(text)

    body = {"model": "mock-claude", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{base_url}/v1/messages", json=body, headers=ANTHROPIC_HEADERS) as response:
        raw = await response.text()
    names = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * word_count("Mock reply to: hi"),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.asyncio
async def test_anthropic_tool_use_stream(claude: anthropic.AsyncAnthropic) -> None:
    partial_pieces = 0
    async with claude.messages.stream(
        model="mock-claude",
        max_tokens=256,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "[[mock: tool]] latest news about cats"}],
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial_pieces += 1
        final = await stream.get_final_message()
    assert partial_pieces >= 3
    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_") and block.name == "search"
    assert block.input == {"query": "latest news about cats"}

    conversation: Any = [
        {"role": "user", "content": "[[mock: tool]] latest news about cats"},
        {"role": "assistant", "content": [block.model_dump()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "Cats are great"}],
        },
    ]
    result = await claude.messages.create(
        model="mock-claude",
        max_tokens=256,
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "auto"},
        messages=conversation,
    )
    assert result.content[0].type == "text"
    assert result.content[0].text == "Tool result received: Cats are great"
    forced = await claude.messages.create(
        model="mock-claude",
        max_tokens=256,
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "anything"}],
    )
    assert forced.stop_reason == "tool_use"


@pytest.mark.asyncio
async def test_anthropic_prompt_caching(claude: anthropic.AsyncAnthropic) -> None:
    system = "A long, stable system prompt. " * 20
    kwargs: dict[str, Any] = {
        "model": "mock-claude",
        "max_tokens": 64,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
    }
    first = await claude.messages.create(**kwargs, messages=[{"role": "user", "content": "question one"}])
    second = await claude.messages.create(**kwargs, messages=[{"role": "user", "content": "question two"}])
    cached = math.ceil(len(system) / 4)
    total = prompt_tokens(system, "question one")
    assert first.usage.cache_creation_input_tokens == cached
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == total - cached
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == cached


@pytest.mark.asyncio
async def test_anthropic_header_checks(base_url: str, http: aiohttp.ClientSession) -> None:
    body = {"model": "mock-claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{base_url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}) as response:
        assert response.status == 401
        payload = await response.json()
        assert payload["type"] == "error"
        assert payload["error"]["type"] == "authentication_error"
    async with http.post(f"{base_url}/v1/messages", json=body, headers={"x-api-key": "k"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "invalid_request_error"


@pytest.mark.asyncio
async def test_anthropic_injected_errors(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as rate_limited:
        await claude.messages.create(
            model="mock-claude",
            max_tokens=10,
            messages=[{"role": "user", "content": "[[mock: status=429 retry_after=3]]"}],
        )
    assert rate_limited.value.response.headers["retry-after"] == "3"
    assert rate_limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError):
        await claude.messages.create(
            model="mock-claude",
            max_tokens=10,
            messages=[{"role": "user", "content": "[[mock: status=529]]"}],
        )


# --------------------------------------------------------------------------- Ollama


@pytest.mark.asyncio
async def test_ollama_chat_ndjson_stream(base_url: str, http: aiohttp.ClientSession) -> None:
    user = "Hi llama"
    body = {"model": "mock-llama", "messages": [{"role": "user", "content": user}]}
    lines: list[dict[str, Any]] = []
    async with http.post(f"{base_url}/api/chat", json=body) as response:
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        async for raw in response.content:
            if raw.strip():
                lines.append(json.loads(raw))
    *chunks, last = lines
    assert all(not c["done"] and c["message"]["role"] == "assistant" for c in chunks)
    assert "".join(c["message"]["content"] for c in chunks) == f"Mock reply to: {user}"
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["prompt_eval_count"] == prompt_tokens(user)
    assert last["eval_count"] == len(chunks)
    assert last["total_duration"] > 0 and "eval_duration" in last


@pytest.mark.asyncio
async def test_ollama_non_stream_tools_tags_embed(base_url: str, http: aiohttp.ClientSession) -> None:
    body = {
        "model": "mock-llama",
        "stream": False,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "find docs [[mock: tool]]"}],
    }
    async with http.post(f"{base_url}/api/chat", json=body) as response:
        payload = await response.json()
    assert payload["done"] is True
    assert payload["message"]["tool_calls"] == [{"function": {"name": "search", "arguments": {"query": "find docs"}}}]
    body["messages"] = [
        *body["messages"],  # type: ignore[misc]
        {"role": "tool", "content": "three documents"},
    ]
    async with http.post(f"{base_url}/api/chat", json=body) as response:
        payload = await response.json()
    assert payload["message"]["content"] == "Tool result received: three documents"
    async with http.get(f"{base_url}/api/tags") as response:
        assert "mock-llama:latest" in [m["name"] for m in (await response.json())["models"]]
    async with http.post(f"{base_url}/api/embed", json={"model": "mock-embed", "input": ["a", "b"]}) as response:
        embed = await response.json()
    assert len(embed["embeddings"]) == 2 and len(embed["embeddings"][0]) == 8
    assert embed["embeddings"][0] == pytest.approx(embedding_vector("a", 8))


@pytest.mark.asyncio
async def test_ollama_generate_stream_and_fill_in_the_middle(base_url: str, http: aiohttp.ClientSession) -> None:
    prompt = "Once upon a time"
    lines: list[dict[str, Any]] = []
    async with http.post(f"{base_url}/api/generate", json={"model": "mock-llama", "prompt": prompt}) as response:
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        async for raw in response.content:
            if raw.strip():
                lines.append(json.loads(raw))
    *chunks, last = lines
    assert all(not c["done"] for c in chunks)
    assert "".join(c["response"] for c in chunks) == f"Mock reply to: {prompt}"
    assert last["done"] is True and last["done_reason"] == "stop" and last["response"] == ""
    assert last["prompt_eval_count"] == prompt_tokens(prompt) and last["eval_count"] == len(chunks)

    body = {"model": "mock-llama", "prompt": "def add(a, b):", "suffix": "print(add(1, 2))", "stream": False}
    async with http.post(f"{base_url}/api/generate", json=body) as response:
        payload = await response.json()
    assert payload["done"] is True
    assert payload["response"].startswith("Mock fill between: def add(a, b):")
    assert payload["response"].endswith("print(add(1, 2))")
    assert payload["prompt_eval_count"] == prompt_tokens("def add(a, b):", "print(add(1, 2))")

    body = {"model": "mock-llama", "prompt": "long [[mock: words=20]]", "stream": False, "options": {"num_predict": 3}}
    async with http.post(f"{base_url}/api/generate", json=body) as response:
        payload = await response.json()
    assert payload["done_reason"] == "length" and payload["eval_count"] == 3
    async with http.post(f"{base_url}/api/generate", json={"model": "mock-llama", "prompt": 5}) as response:
        assert response.status == 400
        assert "prompt" in (await response.json())["error"]


# --------------------------------------------------------------------------- directives


@pytest.mark.asyncio
async def test_status_directives(oai: openai.AsyncOpenAI, base_url: str, http: aiohttp.ClientSession) -> None:
    with pytest.raises(openai.InternalServerError) as failed:
        await oai.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "[[mock: status=500]]"}]
        )
    assert failed.value.status_code == 500
    assert "retry-after" not in failed.value.response.headers
    body = {"model": "m", "messages": [{"role": "user", "content": "x [[mock: status=429]]"}]}
    async with http.post(f"{base_url}/v1/chat/completions", json=body) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        error = (await response.json())["error"]
        assert error["type"] == "rate_limit_error" and error["message"]
    async with http.post(
        f"{base_url}/api/chat",
        json={
            "model": "l",
            "messages": [{"role": "user", "content": "[[mock: status=503]]"}],
        },
    ) as response:
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        assert "error" in await response.json()


@pytest.mark.asyncio
async def test_delay_and_pacing(oai: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    await oai.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "[[mock: delay=0.3]]"}])
    assert time.monotonic() - started >= 0.3

    started = time.monotonic()
    stream = await oai.chat.completions.create(
        model="mock-gpt",
        stream=True,
        messages=[{"role": "user", "content": "go [[mock: ttft=0.2 tps=50]]"}],
    )
    arrivals = [
        time.monotonic() - started async for chunk in stream if chunk.choices and chunk.choices[0].delta.content
    ]
    assert arrivals[0] >= 0.2
    # 50 tokens/s: 20 ms between chunks after the first.
    assert arrivals[-1] - arrivals[0] >= 0.02 * (len(arrivals) - 1) * 0.8


@pytest.mark.asyncio
async def test_drop_after_mid_stream(oai: openai.AsyncOpenAI, base_url: str, http: aiohttp.ClientSession) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError) as dropped:
        stream = await oai.chat.completions.create(
            model="mock-gpt",
            stream=True,
            messages=[{"role": "user", "content": "one two three [[mock: drop_after=2]]"}],
        )
        async for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "incomplete chunked read" in str(dropped.value.__cause__)
    assert "".join(received) == "Mock reply"

    body: dict[str, Any] = {"model": "l", "messages": [{"role": "user", "content": "x [[mock: drop_after=0]]"}]}
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(f"{base_url}/api/chat", json=body) as response:
            assert response.status == 200
            await response.read()
    body = {"model": "m", "stream": False, "messages": [{"role": "user", "content": "[[mock: drop_after=0]]"}]}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post(f"{base_url}/v1/chat/completions", json=body) as response:
            await response.read()
    records = await events(http, base_url)
    assert [r["dropped"] for r in records] == [True, True, True]
    assert not any(r["completed"] or r["cancelled"] for r in records)


@pytest.mark.asyncio
async def test_hang_is_cancellable_and_recorded(base_url: str, http: aiohttp.ClientSession) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "[[mock: hang=1]]"}]}
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            f"{base_url}/v1/chat/completions",
            json=body,
            headers={"X-Request-Id": "req-hang-1"},
            timeout=aiohttp.ClientTimeout(total=0.3),
        ) as response:
            await response.read()
    deadline = time.monotonic() + 3
    while True:
        [record] = [r for r in await events(http, base_url) if r["id"] == "req-hang-1"]
        if record["cancelled"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert record["cancelled"] is True and record["completed"] is False
    assert record["directives"] == {"hang": True}
    assert record["ended_at"] is not None and record["path"] == "/v1/chat/completions"


@pytest.mark.asyncio
async def test_client_disconnect_mid_stream_is_recorded(base_url: str, http: aiohttp.ClientSession) -> None:
    body = {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "slow [[mock: tps=10 words=20]]"}],
    }
    async with http.post(
        f"{base_url}/v1/chat/completions", json=body, headers={"X-Request-Id": "req-gone"}
    ) as response:
        first = await response.content.readline()
        assert first.startswith(b"data: ")
        response.close()  # walk away mid-stream
    deadline = time.monotonic() + 3
    while True:
        [record] = [r for r in await events(http, base_url) if r["id"] == "req-gone"]
        if record["cancelled"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert record["cancelled"] is True and record["completed"] is False and record["stream"] is True


@pytest.mark.asyncio
async def test_app_level_pacing() -> None:
    # The app-level first-token delay is far longer than any scheduling hiccup on a busy machine,
    # so "the directive wins" is a wide deadline, not a tight timing bound.
    runner, port = await start_mock(port=0, ttft=60, tokens_per_second=100, latency=0.1)
    try:
        async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0) as client:
            started = time.monotonic()
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "a [[mock: ttft=0.15]]"}]
            )
            assert time.monotonic() - started >= 0.25  # ttft + latency: sleeps are never shorter
            stream = await client.chat.completions.create(
                model="m", stream=True, messages=[{"role": "user", "content": "b [[mock: ttft=0]]"}]
            )

            async def first_chunk() -> object:
                async for chunk in stream:
                    return chunk
                return None

            # Without the directive this waits 60 s; with it, well inside the 20 s deadline.
            assert await asyncio.wait_for(first_chunk(), timeout=20) is not None
            await stream.close()
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_model_filter_and_events(oai: openai.AsyncOpenAI, base_url: str, http: aiohttp.ClientSession) -> None:
    messages: Any = [{"role": "user", "content": "hi [[mock: status=500 model=primary]]"}]
    with pytest.raises(openai.InternalServerError):
        await oai.chat.completions.create(model="primary", messages=messages)
    ok = await oai.chat.completions.create(
        model="fallback", messages=messages, extra_headers={"X-Request-Id": "req-fb"}
    )
    assert ok.choices[0].message.content.startswith("Mock reply to: hi")  # type: ignore[union-attr]
    records = await events(http, base_url)
    assert [(r["model"], r["status"], r["directives"]) for r in records] == [
        ("primary", 500, {"status": 500}),
        ("fallback", 200, {}),
    ]
    assert records[1]["id"] == "req-fb" and records[1]["completed"] is True
    async with http.delete(f"{base_url}/_mock/events") as response:
        assert response.status == 200
    assert await events(http, base_url) == []
    async with http.get(f"{base_url}/_mock/health") as response:
        assert response.status == 200


@pytest.mark.asyncio
async def test_no_usage(oai: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "count me [[mock: no_usage=1]]"}]
    completion = await oai.chat.completions.create(model="mock-gpt", messages=messages)
    assert completion.usage is None
    assert completion.choices[0].message.content
    stream = await oai.chat.completions.create(
        model="mock-gpt",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.usage is None for chunk in chunks)


@pytest.mark.asyncio
async def test_reply_directive_answers_with_the_given_text(oai: openai.AsyncOpenAI) -> None:
    text = "Clean up first:\n```bash\nrm -rf build/, then [rebuild]\n```"
    marker = f"[[mock: reply={quote(text, safe='')} model=cheap]]"
    messages: Any = [{"role": "user", "content": f"how do I rebuild? {marker}"}]
    cheap = await oai.chat.completions.create(model="cheap", messages=messages)
    assert cheap.choices[0].message.content == text
    other = await oai.chat.completions.create(model="strong", messages=messages)
    assert other.choices[0].message.content.startswith("Mock reply to: how do I rebuild?")  # type: ignore[union-attr]
    stream = await oai.chat.completions.create(model="cheap", messages=messages, stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert streamed == text
    assert parse_directives(["[[mock: reply=a%20b]]"], "m").as_dict() == {"reply": "a b"}


# --------------------------------------------------------------------------- command


def test_management_command_serves_until_terminated() -> None:
    """The command runs in the foreground, announces its port, stops on SIGTERM."""
    script = (
        "import django; from django.conf import settings; settings.configure(); "
        "django.setup(); from django.core.management import call_command; "
        "from providers.management.commands.mock_upstream import Command; "
        "call_command(Command(), port=0, ttft=0.0)"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("mock upstream listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]

        async def check() -> int:
            async with aiohttp.ClientSession() as session, session.get(f"{url}/_mock/health") as response:
                return response.status

        assert asyncio.run(check()) == 200
        process.terminate()
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

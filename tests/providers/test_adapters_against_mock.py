"""The Anthropic and Ollama adapters over real HTTP against the bundled mock upstream.

No database: the mock is a plain aiohttp app started in-process on a free port.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gateway_platform.errors import GatewayError
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatAdapter, Deployment, ProviderConfig, StreamChunk, chunk_text, unpack
from providers.adapters.ollama import OllamaAdapter, list_models

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the docs",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
ADAPTERS: dict[str, tuple[ChatAdapter, str]] = {
    "anthropic": (AnthropicAdapter(), "mock-claude"),
    "ollama": (OllamaAdapter(), "mock-llama:latest"),
}


def make_deployment(base_url: str, kind: str) -> Deployment:
    provider = ProviderConfig(
        id=1,
        name=f"mock-{kind}",
        kind=kind,
        base_url=base_url,
        api_key="test-key",
        connect_timeout=2.0,
        read_timeout=5.0,
        total_timeout=10.0,
        max_connections=10,
    )
    return Deployment(
        model_id=1,
        name=f"public-{kind}",
        upstream_model=ADAPTERS[kind][1],
        provider=provider,
        input_cost_per_million=Decimal(1),
        output_cost_per_million=Decimal(2),
        context_window=100_000,
        max_output_tokens=None,
    )


async def collect(adapter: ChatAdapter, deployment: Deployment, body: dict[str, Any]) -> list[StreamChunk]:
    # A run (several OpenAI events of one read, relayed unread) counts as its events.
    return [event async for chunk in adapter.stream(deployment, body) for event in unpack(chunk)]


def chunk_payloads(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    return [orjson.loads(c.data) for c in chunks if c.data is not None]


def reassemble_tool_call(chunks: list[StreamChunk]) -> dict[str, Any]:
    call: dict[str, Any] = {"id": None, "name": None, "arguments": ""}
    for payload in chunk_payloads(chunks):
        for choice in payload["choices"]:
            for delta in choice["delta"].get("tool_calls", []):
                assert delta["index"] == 0
                call["id"] = delta.get("id") or call["id"]
                call["name"] = delta.get("function", {}).get("name") or call["name"]
                call["arguments"] += delta.get("function", {}).get("arguments", "")
    return call


def user(text: str) -> dict[str, Any]:
    return {"model": "public", "messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize("kind", ["anthropic", "ollama"])
async def test_it_completes_text(mock_url: str, kind: str) -> None:
    adapter = ADAPTERS[kind][0]
    completion = await adapter.complete(make_deployment(mock_url, kind), user("hello there"))
    body = orjson.loads(completion.body)
    assert body["object"] == "chat.completion" and body["model"] == f"public-{kind}"
    assert body["choices"][0]["message"]["content"] == "Mock reply to: hello there"
    assert completion.text == "Mock reply to: hello there" and completion.finish_reason == "stop"
    # The mock counts ceil(chars / 4) prompt tokens and one token per word.
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == math.ceil(len("hello there") / 4)
    assert completion.usage.completion_tokens == 5
    assert body["usage"]["total_tokens"] == completion.usage.prompt_tokens + 5


@pytest.mark.parametrize("kind", ["anthropic", "ollama"])
async def test_it_streams_text_and_ends_with_usage(mock_url: str, kind: str) -> None:
    adapter = ADAPTERS[kind][0]
    chunks = await collect(adapter, make_deployment(mock_url, kind), user("stream me please"))
    payloads = chunk_payloads(chunks)
    assert all(p["object"] == "chat.completion.chunk" and p["model"] == f"public-{kind}" for p in payloads)
    assert len({p["id"] for p in payloads}) == 1 and payloads[0]["id"]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(chunk_text(c) for c in chunks) == "Mock reply to: stream me please"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    last = chunks[-1]
    assert last.usage_only and last.usage is not None and payloads[-1]["choices"] == []
    assert last.usage.prompt_tokens == math.ceil(len("stream me please") / 4)
    assert last.usage.completion_tokens == 6


@pytest.mark.parametrize("kind", ["anthropic", "ollama"])
async def test_it_runs_a_tool_call_loop(mock_url: str, kind: str) -> None:
    adapter = ADAPTERS[kind][0]
    deployment = make_deployment(mock_url, kind)
    body: dict[str, Any] = {
        "model": "public",
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "find cats [[mock: tool]]"}],
    }
    first = await adapter.complete(deployment, body)
    assert first.finish_reason == "tool_calls"
    message = orjson.loads(first.body)["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "search"
    assert orjson.loads(call["function"]["arguments"]) == {"query": "find cats"}

    streamed = await collect(adapter, deployment, body)
    streamed_call = reassemble_tool_call(streamed)
    assert streamed_call["name"] == "search" and streamed_call["id"]
    assert orjson.loads(streamed_call["arguments"]) == {"query": "find cats"}
    assert [c.finish_reason for c in streamed if c.finish_reason] == ["tool_calls"]

    body["messages"] += [message, {"role": "tool", "tool_call_id": call["id"], "content": "42 cats"}]
    answer = await adapter.complete(deployment, body)
    assert answer.text == "Tool result received: 42 cats" and answer.finish_reason == "stop"
    streamed_answer = await collect(adapter, deployment, body)
    assert "".join(chunk_text(c) for c in streamed_answer) == "Tool result received: 42 cats"


@pytest.mark.parametrize("kind", ["anthropic", "ollama"])
async def test_upstream_500_is_a_retryable_502(mock_url: str, kind: str) -> None:
    adapter, deployment = ADAPTERS[kind][0], make_deployment(mock_url, kind)
    with pytest.raises(GatewayError) as failed:
        await adapter.complete(deployment, user("boom [[mock: status=500]]"))
    assert failed.value.status == 502 and failed.value.retryable
    with pytest.raises(GatewayError) as failed:
        await collect(adapter, deployment, user("boom [[mock: status=500]]"))
    assert failed.value.status == 502 and failed.value.retryable


@pytest.mark.parametrize("kind", ["anthropic", "ollama"])
async def test_a_dropped_stream_raises_during_iteration(mock_url: str, kind: str) -> None:
    adapter, deployment = ADAPTERS[kind][0], make_deployment(mock_url, kind)
    received: list[StreamChunk] = []
    with pytest.raises(GatewayError) as failed:
        async for chunk in adapter.stream(deployment, user("one two three four five [[mock: drop_after=2]]")):
            received.append(chunk)
    assert failed.value.code == "upstream_disconnected" and failed.value.retryable
    assert "".join(chunk_text(c) for c in received) == "Mock reply"  # the two content chunks sent before the drop
    assert not any(c.usage_only for c in received)


@pytest.mark.parametrize("kind", ["anthropic", "ollama"])
async def test_no_usage_means_no_usage_chunk(mock_url: str, kind: str) -> None:
    adapter, deployment = ADAPTERS[kind][0], make_deployment(mock_url, kind)
    chunks = await collect(adapter, deployment, user("quiet [[mock: no_usage=1]]"))
    assert chunks and not any(c.usage_only for c in chunks)
    completion = await adapter.complete(deployment, user("quiet [[mock: no_usage=1]]"))
    assert completion.usage is None


async def test_anthropic_prompt_caching_switch(mock_url: str) -> None:
    adapter, deployment = ADAPTERS["anthropic"][0], make_deployment(mock_url, "anthropic")
    system = "You are a meticulous reviewer of Python code. " * 20
    body: dict[str, Any] = {
        "model": "public",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "review this"}],
    }
    for _ in range(2):
        plain = await adapter.complete(deployment, body)
        assert plain.usage is not None and plain.usage.cached_prompt_tokens == 0
        assert orjson.loads(plain.body)["usage"]["cache_creation_input_tokens"] == 0

    cached_body = {**body, "x_gateway_prompt_caching": True}
    first = await adapter.complete(deployment, cached_body)
    first_usage = orjson.loads(first.body)["usage"]
    assert first.usage is not None and first.usage.cached_prompt_tokens == 0
    assert first_usage["cache_creation_input_tokens"] == math.ceil(len(system.strip()) / 4)

    chunks = await collect(adapter, deployment, cached_body)
    usage = chunks[-1].usage
    assert usage is not None and usage.cached_prompt_tokens == first_usage["cache_creation_input_tokens"]
    assert usage.prompt_tokens == first.usage.prompt_tokens
    final = orjson.loads(chunks[-1].data or b"{}")["usage"]
    assert final["prompt_tokens_details"]["cached_tokens"] == usage.cached_prompt_tokens
    assert final["cache_creation_input_tokens"] == 0


async def test_ollama_lists_models(mock_url: str) -> None:
    models = await list_models(make_deployment(mock_url, "ollama").provider)
    assert "mock-llama:latest" in models

"""The Azure OpenAI, Gemini and Bedrock adapters over real HTTP against the bundled mock upstream.

The mock speaks each wire format (Bedrock: SigV4 checked, AWS event-stream frames) with the
same ``[[mock: ...]]`` fault directives as the other formats. No database needed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from gateway_platform.errors import GatewayError
from providers.adapters import adapter_for, embedding_adapter_for
from providers.adapters.base import ChatAdapter, Deployment, ProviderConfig, StreamChunk, chunk_text, unpack
from providers.mock_upstream.bedrock_format import MOCK_AWS_SECRET
from tests.conftest import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

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
KINDS = {
    "azure": ("my-gpt-deployment", "azure-key"),
    "gemini": ("gemini-2.5-flash", "gemini-key"),
    "bedrock": ("anthropic.claude-sonnet-4-5-v1:0", f"AKIDMOCK:{MOCK_AWS_SECRET}"),
}


def make_deployment(base_url: str, kind: str, **provider_fields: Any) -> Deployment:
    upstream, key = KINDS[kind]
    fields: dict[str, Any] = {
        "id": 1,
        "name": f"mock-{kind}",
        "kind": kind,
        "base_url": base_url,
        "api_key": key,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "total_timeout": 10.0,
        "max_connections": 10,
        "region": "eu-west-1",
        **provider_fields,
    }
    return Deployment(
        model_id=1,
        name=f"public-{kind}",
        upstream_model=upstream,
        provider=ProviderConfig(**fields),
        input_cost_per_million=Decimal(1),
        output_cost_per_million=Decimal(2),
        context_window=100_000,
        max_output_tokens=None,
    )


def adapter(kind: str) -> ChatAdapter:
    found = adapter_for(kind)
    assert found is not None
    return found


async def collect(kind: str, deployment: Deployment, body: dict[str, Any]) -> list[StreamChunk]:
    # A run (several OpenAI events of one read, relayed unread) counts as its events.
    return [event async for chunk in adapter(kind).stream(deployment, body) for event in unpack(chunk)]


def assembled(chunks: list[StreamChunk]) -> tuple[str, dict[int, dict[str, str]], list[str]]:
    """(text, tool calls by index, finish reasons) of a translated stream."""
    text, calls, finishes = "", {}, []
    for chunk in chunks:
        payload = orjson.loads(chunk.data or b"{}")
        for choice in payload.get("choices", []):
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] = call.get("function", {}).get("name") or entry["name"]
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])
    return text, calls, finishes


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]}


@pytest.mark.parametrize("kind", list(KINDS))
async def test_it_answers_with_text_and_usage(mock_url, kind):
    completion = await adapter(kind).complete(make_deployment(mock_url, kind), user("hello there"))
    body = orjson.loads(completion.body)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Mock reply to: hello there"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens == 5
    assert body["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize("kind", list(KINDS))
async def test_it_streams_text_then_usage(mock_url, kind):
    body = {**user("stream this [[mock: words=5]]"), "stream": True}
    chunks = await collect(kind, make_deployment(mock_url, kind), body)
    text, calls, finishes = assembled(chunks)
    assert text.startswith("Mock reply to: stream this") and text.endswith(" lorem ipsum dolor sit amet")
    assert not calls and finishes == ["stop"]
    assert chunks[-1].usage_only and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(text.split())
    assert sum(1 for c in chunks if chunk_text(c)) > 5  # pass-through: many chunks, not one buffered answer


@pytest.mark.parametrize("kind", list(KINDS))
async def test_it_streams_tool_calls_and_takes_tool_results(mock_url, kind):
    deployment = make_deployment(mock_url, kind)
    body = {**user("look up gateways [[mock: tool=1]]"), "tools": TOOLS, "stream": True}
    _, calls, finishes = assembled(await collect(kind, deployment, body))
    assert finishes == ["tool_calls"]
    assert calls[0]["name"] == "search" and calls[0]["id"]
    assert orjson.loads(calls[0]["arguments"]) == {"query": "look up gateways"}
    follow_up = {
        "messages": [
            *body["messages"],
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
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "gateways route requests"},
        ],
        "tools": TOOLS,
    }
    answer = orjson.loads((await adapter(kind).complete(deployment, follow_up)).body)
    assert answer["choices"][0]["message"]["content"] == "Tool result received: gateways route requests"


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_forced_tool_comes_back_as_a_tool_call(mock_url, kind):
    body = {**user("find it"), "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "search"}}}
    answer = orjson.loads((await adapter(kind).complete(make_deployment(mock_url, kind), body)).body)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "search"


@pytest.mark.parametrize(
    ("directive", "status", "retryable"),
    [("status=500", 502, True), ("status=503", 502, True), ("status=429", 429, True), ("status=400", 400, False)],
)
@pytest.mark.parametrize("kind", list(KINDS))
async def test_upstream_errors_map_to_the_gateway_contract(mock_url, kind, directive, status, retryable):
    with pytest.raises(GatewayError) as caught:
        await adapter(kind).complete(make_deployment(mock_url, kind), user(f"fail [[mock: {directive}]]"))
    assert caught.value.status == status and caught.value.retryable is retryable


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_stream_cut_short_is_a_retryable_502(mock_url, kind):
    body = {**user("cut [[mock: words=10 drop_after=2]]"), "stream": True}
    with pytest.raises(GatewayError) as caught:
        await collect(kind, make_deployment(mock_url, kind), body)
    assert caught.value.status == 502 and caught.value.retryable


@pytest.mark.parametrize("kind", list(KINDS))
async def test_an_unreachable_endpoint_is_a_502(kind):
    deployment = make_deployment(f"http://127.0.0.1:{free_port()}", kind)
    with pytest.raises(GatewayError) as caught:
        await adapter(kind).complete(deployment, user("anyone?"))
    assert caught.value.status == 502 and caught.value.code == "upstream_unreachable"


@pytest.mark.parametrize("key", [f"AKIDMOCK:wrong-{MOCK_AWS_SECRET}", f"EXPIRED:{MOCK_AWS_SECRET}:old-session-token"])
async def test_bedrock_bad_or_expired_credentials_are_our_configuration_502(mock_url, key):
    with pytest.raises(GatewayError) as caught:
        await adapter("bedrock").complete(make_deployment(mock_url, "bedrock", api_key=key), user("hi"))
    assert caught.value.status == 502 and caught.value.code == "upstream_auth_failed"


async def test_bedrock_signs_with_the_session_token_and_the_region(mock_url):
    deployment = make_deployment(mock_url, "bedrock", api_key=f"AKIDMOCK:{MOCK_AWS_SECRET}:session-token")
    completion = await adapter("bedrock").complete(deployment, user("signed"))
    assert orjson.loads(completion.body)["choices"][0]["message"]["content"] == "Mock reply to: signed"
    async with aiohttp.ClientSession() as session, session.get(f"{mock_url}/_mock/events") as resp:
        event = (await resp.json())[-1]
    assert event["path"] == "/model/anthropic.claude-sonnet-4-5-v1:0/converse"
    assert "x-amz-date" in event["headers"] and "x-amz-security-token" not in event["headers"]


@pytest.mark.parametrize("kind", ["azure", "gemini"])
async def test_a_missing_key_is_our_configuration_502(mock_url, kind):
    with pytest.raises(GatewayError) as caught:
        await adapter(kind).complete(make_deployment(mock_url, kind, api_key=None), user("hi"))
    assert caught.value.status == 502 and caught.value.code == "upstream_auth_failed"


@pytest.mark.parametrize("kind", list(KINDS))
async def test_extra_headers_reach_the_provider(mock_url, kind):
    extra = (("CF-Access-Client-Id", "client-id"), ("CF-Access-Client-Secret", "client-secret"))
    await adapter(kind).complete(make_deployment(mock_url, kind, extra_headers=extra), user("through the tunnel"))
    async with aiohttp.ClientSession() as session, session.get(f"{mock_url}/_mock/events") as resp:
        event = (await resp.json())[-1]
    assert event["headers"]["cf-access-client-id"] == "client-id"
    assert event["headers"]["cf-access-client-secret"] == "client-secret"


async def test_azure_embeddings(mock_url):
    embedder = embedding_adapter_for("azure")
    assert embedder is not None
    result = await embedder.embed(make_deployment(mock_url, "azure"), {"input": ["a", "b"]})
    body = orjson.loads(result.body)
    assert len(body["data"]) == 2 and result.usage is not None and result.usage.prompt_tokens > 0

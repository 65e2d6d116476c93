"""The official openai SDK against a real Daphne gateway, through to the mock upstream."""

from __future__ import annotations

import json

import openai
import pytest

from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

CONTRACT_HEADERS = (
    "x-request-id",
    "x-gateway-tier",
    "x-gateway-provider",
    "x-gateway-model",
    "x-gateway-cache",
    "x-gateway-cost-usd",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_files",
            "description": "Search the repository.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    }
]


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    model = make_model(provider, name="mock-small", upstream_model="mock-small-1", input_cost="2", output_cost="4")
    make_tier("simple_ops", [model])
    return make_key()[1]


@pytest.fixture
def client(gateway_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)


@pytest.fixture
def aclient(gateway_url: str, secret: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)


def test_it_answers_a_non_streaming_request_with_usage_and_headers(client, drained_events):
    raw = client.chat.completions.with_raw_response.create(
        model="simple_ops", messages=[{"role": "user", "content": "hello gateway"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens == 5
    for name in CONTRACT_HEADERS:
        assert raw.headers.get(name), name
    assert raw.headers["x-gateway-tier"] == "simple_ops"
    assert raw.headers["x-gateway-provider"] == "mockai"
    assert raw.headers["x-gateway-model"] == "mock-small"
    expected_cost = (completion.usage.prompt_tokens * 2 + completion.usage.completion_tokens * 4) / 1e6
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected_cost)

    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.status_code == 200
    assert event.tier == "simple_ops" and event.model == "mock-small" and event.provider == "mockai"
    assert event.prompt_tokens == completion.usage.prompt_tokens
    assert event.completion_tokens == 5
    assert float(event.cost_usd) == pytest.approx(expected_cost)
    assert not event.stream and not event.tokens_estimated


def test_it_streams_chunks_and_reports_usage_when_asked(client, drained_events):
    with client.chat.completions.with_streaming_response.create(
        model="mock-small",
        messages=[{"role": "user", "content": "stream please [[mock: words=4]]"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for name in CONTRACT_HEADERS:
            assert response.headers.get(name), name
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Mock reply to: stream please")
    assert text.endswith("lorem ipsum dolor sit")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())

    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.stream and event.completion_tokens == chunks[-1].usage.completion_tokens
    assert event.ttft_ms is not None


def test_it_hides_the_usage_chunk_unless_asked(client):
    chunks = list(
        client.chat.completions.create(model="mock-small", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_it_passes_tool_calls_through(client):
    completion = client.chat.completions.create(
        model="mock-small",
        messages=[{"role": "user", "content": "find the config [[mock: tool]]"}],
        tools=TOOLS,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "search_files"
    assert json.loads(call.function.arguments)["query"].startswith("find the config")

    followup = client.chat.completions.create(
        model="mock-small",
        messages=[
            {"role": "user", "content": "find the config [[mock: tool]]"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "settings.py"},
        ],
        tools=TOOLS,
    )
    assert followup.choices[0].message.content == "Tool result received: settings.py"


def test_it_streams_tool_call_argument_deltas(client):
    stream = client.chat.completions.create(
        model="mock-small",
        messages=[{"role": "user", "content": "grep for TODO [[mock: tool]]"}],
        tools=TOOLS,
        stream=True,
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            name += call.function.name or ""
            arguments += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "search_files"
    assert json.loads(arguments)["query"].startswith("grep for TODO")
    assert finish == "tool_calls"


async def test_async_client_streams_and_completes(aclient):
    completion = await aclient.chat.completions.create(
        model="simple_ops", messages=[{"role": "user", "content": "async hello"}]
    )
    assert completion.choices[0].message.content == "Mock reply to: async hello"
    stream = await aclient.chat.completions.create(
        model="simple_ops", messages=[{"role": "user", "content": "async stream"}], stream=True
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == "Mock reply to: async stream"


def test_models_lists_what_the_key_may_use(client, gateway_url):
    ids = {model.id for model in client.models.list()}
    assert {"mock-small", "simple_ops"} <= ids
    _, limited = make_key(allowed_models=["simple_ops"])
    restricted = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=limited, max_retries=0)
    # `auto` routes among the tiers the key may use: simple_ops has a band (derived when none is set).
    assert {model.id for model in restricted.models.list()} == {"simple_ops", "auto"}


def test_it_estimates_tokens_when_the_upstream_sends_no_usage(client, drained_events):
    raw = client.chat.completions.with_raw_response.create(
        model="mock-small", messages=[{"role": "user", "content": "count me [[mock: no_usage=1]]"}]
    )
    assert raw.parse().usage is None
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.tokens_estimated
    assert event.prompt_tokens > 0 and event.completion_tokens > 0
    assert float(event.cost_usd) > 0

"""The openai SDK through the gateway to Azure OpenAI, Gemini and Bedrock wire formats (mock upstream).

Streams with tool calls, the tool-result round trip and usage, per provider kind; Bedrock
requests are SigV4-signed and the mock checks the signature. Extra headers configured on a
provider reach it with values taken from the gateway's environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import openai
import pytest

from providers.mock_upstream.bedrock_format import MOCK_AWS_SECRET
from tests.conftest import MOCK_PROVIDER_KEY_ENV, start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)

BEDROCK_ENV = "BEDROCK_TEST_CREDENTIAL"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    }
]
KINDS = {
    "azure": {"api_key_env": MOCK_PROVIDER_KEY_ENV, "api_version": "2024-10-21"},
    "gemini": {"api_key_env": MOCK_PROVIDER_KEY_ENV},
    "bedrock": {"api_key_env": BEDROCK_ENV, "region": "eu-central-1"},
}


@pytest.fixture(scope="module")
def cloud_gateway_url(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    """A gateway process whose environment holds a Bedrock credential the mock accepts."""
    proc, url = start_gateway(**{BEDROCK_ENV: f"AKIDTESTGATEWAY:{MOCK_AWS_SECRET}"})
    yield url
    stop_process(proc)


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(cloud_gateway_url: str, mock_upstream_url: str, kind: str) -> openai.OpenAI:
    provider = make_provider(mock_upstream_url, kind=kind, name=f"mock-{kind}", **KINDS[kind])
    make_model(provider, name="cloud", upstream_model=f"{kind}-model-v1:0")
    return openai.OpenAI(base_url=f"{cloud_gateway_url}/v1", api_key=make_key()[1], max_retries=0)


def test_text_round_trip_with_usage(client, kind):
    raw = client.chat.completions.with_raw_response.create(
        model="cloud", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello cloud"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello cloud"
    assert completion.usage.completion_tokens == 5 and completion.usage.prompt_tokens > 0
    assert raw.headers["x-gateway-provider"] == f"mock-{kind}"


def test_streamed_tool_call_loop(client):
    messages: list[dict[str, object]] = [{"role": "user", "content": "open the readme [[mock: tool]]"}]
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(model="cloud", messages=messages, tools=TOOLS, stream=True):
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function.name or "") if delta.function else ""
            call["arguments"] += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    [call] = calls.values()
    assert finish == "tool_calls" and call["name"] == "read_file"
    assert json.loads(call["arguments"])["query"].startswith("open the readme")
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": "read_file", "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "# Gateway readme"},
    ]
    chunks = list(
        client.chat.completions.create(
            model="cloud", messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Tool result received: # Gateway readme"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(text.split())


def test_upstream_faults_keep_the_error_contract(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="cloud", messages=[{"role": "user", "content": "[[mock: status=400]]"}])
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="cloud", messages=[{"role": "user", "content": "[[mock: status=500]]"}])
    assert caught.value.status_code == 502


def test_extra_headers_reach_the_provider_from_the_environment(cloud_gateway_url, mock_upstream_url):
    provider = make_provider(
        mock_upstream_url,
        kind="ollama",
        name="tunnelled-ollama",
        extra_headers={"CF-Access-Client-Id": MOCK_PROVIDER_KEY_ENV, "CF-Access-Client-Secret": BEDROCK_ENV},
    )
    make_model(provider, name="tunnelled", upstream_model="llama-tunnel")
    client = openai.OpenAI(base_url=f"{cloud_gateway_url}/v1", api_key=make_key()[1], max_retries=0)
    client.chat.completions.create(model="tunnelled", messages=[{"role": "user", "content": "through cloudflare"}])
    events = httpx2.get(f"{mock_upstream_url}/_mock/events").json()
    [event] = [e for e in events if e["model"] == "llama-tunnel"]
    assert event["headers"]["cf-access-client-id"] == "test-key"
    assert event["headers"]["cf-access-client-secret"] == f"AKIDTESTGATEWAY:{MOCK_AWS_SECRET}"

"""The openai SDK through the gateway to Anthropic and Ollama wire formats (mock upstream)."""

from __future__ import annotations

import json

import openai
import pytest

from routing.models import RoutingPolicy
from tests.conftest import MOCK_PROVIDER_KEY_ENV
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)

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


@pytest.fixture(params=["anthropic", "ollama"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(gateway_url: str, mock_upstream_url: str, kind: str) -> openai.OpenAI:
    provider = make_provider(mock_upstream_url, kind=kind, name=f"mock-{kind}", api_key_env=MOCK_PROVIDER_KEY_ENV)
    make_model(provider, name="backend", upstream_model=f"{kind}-model")
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key()[1], max_retries=0)


def test_text_round_trip(client, kind):
    raw = client.chat.completions.with_raw_response.create(
        model="backend",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello backend"}],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello backend"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == len(completion.choices[0].message.content.split())
    assert completion.usage.prompt_tokens > 0
    assert raw.headers["x-gateway-provider"] == f"mock-{kind}"


def test_streaming_round_trip(client):
    chunks = list(
        client.chat.completions.create(
            model="backend",
            messages=[{"role": "user", "content": "stream it [[mock: words=3]]"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Mock reply to: stream it") and text.endswith("lorem ipsum dolor")
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_full_tool_call_loop(client, stream):
    messages = [{"role": "user", "content": "open the readme [[mock: tool]]"}]
    if stream:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for chunk in client.chat.completions.create(model="backend", messages=messages, tools=TOOLS, stream=True):
            for delta in chunk.choices[0].delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                call["name"] += (delta.function.name or "") if delta.function else ""
                call["arguments"] += (delta.function.arguments or "") if delta.function else ""
            finish = chunk.choices[0].finish_reason or finish
        [call] = calls.values()
        call_id, name, arguments = call["id"], call["name"], call["arguments"]
    else:
        choice = client.chat.completions.create(model="backend", messages=messages, tools=TOOLS).choices[0]
        finish = choice.finish_reason
        [tool_call] = choice.message.tool_calls
        call_id, name, arguments = tool_call.id, tool_call.function.name, tool_call.function.arguments
    assert finish == "tool_calls"
    assert name == "read_file"
    assert json.loads(arguments)["query"].startswith("open the readme")
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "# Gateway README"},
    ]
    answer = client.chat.completions.create(model="backend", messages=messages, tools=TOOLS)
    assert answer.choices[0].message.content == "Tool result received: # Gateway README"
    assert answer.choices[0].finish_reason == "stop"


def test_local_models_are_selected_explicitly(gateway_url, mock_upstream_url):
    ollama = make_provider(mock_upstream_url, kind="ollama", name="ollama-local")
    local = make_model(ollama, name="qwen-local", upstream_model="qwen3-coder:32b")
    make_model(ollama, name="llama-local", upstream_model="llama3:8b")
    RoutingPolicy.objects.create(tenant=None, fallback_model=local, fallback_enabled=True)
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key()[1], max_retries=0)
    for model, extra in (("local:qwen3-coder:32b", None), ("qwen-local", {"provider": "local"})):
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "offline please"}], extra_body=extra
        )
        assert raw.headers["x-gateway-provider"] == "ollama-local"
        assert raw.headers["x-gateway-model"] == "qwen-local"
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(model="local:mistral", messages=[{"role": "user", "content": "x"}])
    message = excinfo.value.body["message"]
    assert "llama-local" in message and "qwen-local" in message

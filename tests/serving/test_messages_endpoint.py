"""``POST /v1/messages`` with the official anthropic SDK against a real Daphne gateway.

The same Anthropic client talks to deployments of every wire format behind the
mock upstream: OpenAI-compatible, Anthropic and Ollama.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx2
import orjson
import pytest

from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

# The mock's Anthropic route wants a credential: the gateway reads it from this variable.
ANTHROPIC_KEY_ENV = "MESSAGES_TEST_ANTHROPIC_KEY"
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
        "name": "search_files",
        "description": "Search the repository.",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    }
]
BACKENDS = ("openai", "anthropic", "ollama")


@pytest.fixture(scope="module")
def gateway(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    """A Daphne gateway whose environment holds the mock Anthropic credential."""
    proc, url = start_gateway(**{ANTHROPIC_KEY_ENV: "mock-anthropic-key"})
    yield url
    stop_process(proc)


def deploy(mock_upstream_url: str, kind: str) -> None:
    if kind == "openai":
        provider = make_provider(f"{mock_upstream_url}/v1", kind="openai", name="mockai")
    elif kind == "anthropic":
        provider = make_provider(mock_upstream_url, kind="anthropic", name="mockai", api_key_env=ANTHROPIC_KEY_ENV)
    else:
        provider = make_provider(mock_upstream_url, kind="ollama", name="mockai")
    model = make_model(provider, name="mock-small", upstream_model="mock-small-1", input_cost="2", output_cost="4")
    make_tier("simple_ops", [model])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, mock_upstream_url: str) -> str:
    deploy(mock_upstream_url, request.param)
    return str(request.param)


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    return make_key()[1]


@pytest.fixture
def client(gateway: str, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=secret, max_retries=0)


def user(text: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": text}]


def test_a_whole_answer_with_usage_headers_and_a_usage_event(backend, client, drained_events):
    raw = client.messages.with_raw_response.create(
        model="simple_ops", max_tokens=100, system="Be brief.", messages=user("hello gateway")
    )
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "simple_ops"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Mock reply to: hello gateway"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 5
    assert raw.headers["content-type"].startswith("application/json")
    for name in CONTRACT_HEADERS:
        assert raw.headers.get(name), name
    assert raw.headers["x-gateway-tier"] == "simple_ops" and raw.headers["x-gateway-model"] == "mock-small"

    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.endpoint == "messages" and event.status_code == 200 and not event.stream
    # Anthropic deployments cache the system prompt (the tenant policy's default): the gateway counts
    # cache writes and reads as prompt tokens, the Messages API reports them beside input_tokens.
    usage = message.usage
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    assert event.prompt_tokens == usage.input_tokens + cached
    assert event.completion_tokens == 5 and event.model == "mock-small"


def test_a_stream_through_the_sdk_helpers(backend, client, drained_events):
    with client.messages.stream(
        model="simple_ops", max_tokens=100, messages=user("stream please [[mock: words=4]]")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
        assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert text.startswith("Mock reply to: stream please") and text.endswith("lorem ipsum dolor sit")
    assert final.content[0].text == text and final.model == "simple_ops"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens == len(text.split())

    [event] = drained_events(1, request_id=request_id)
    assert event.endpoint == "messages" and event.stream
    assert event.completion_tokens == final.usage.output_tokens


def test_a_full_tool_loop(backend, client):
    first = client.messages.create(
        model="simple_ops", max_tokens=100, tools=TOOLS, messages=user("find the config [[mock: tool]]")
    )
    assert first.stop_reason == "tool_use"
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "search_files" and call.input["query"].startswith("find the config")

    followup = client.messages.create(
        model="simple_ops",
        max_tokens=100,
        tools=TOOLS,
        messages=[
            *user("find the config [[mock: tool]]"),
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "settings.py"}]},
        ],
    )
    assert followup.content[0].text == "Tool result received: settings.py"
    assert followup.stop_reason == "end_turn"


def test_a_streamed_tool_call_arrives_as_input_json_deltas(backend, client):
    with client.messages.stream(
        model="simple_ops", max_tokens=100, tools=TOOLS, messages=user("grep for TODO [[mock: tool]]")
    ) as stream:
        final = stream.get_final_message()
    [call] = [block for block in final.content if block.type == "tool_use"]
    assert call.name == "search_files" and call.input["query"].startswith("grep for TODO")
    assert final.stop_reason == "tool_use"


def post(gateway: str, body: dict[str, object], headers: dict[str, str]) -> httpx2.Response:
    return httpx2.post(f"{gateway}/v1/messages", content=orjson.dumps(body), headers=headers, timeout=30)


def test_the_key_may_come_as_x_api_key_or_bearer(mock_upstream_url, gateway, secret):
    deploy(mock_upstream_url, "openai")
    body = {"model": "simple_ops", "max_tokens": 50, "messages": user("hi")}
    for headers in ({"x-api-key": secret}, {"Authorization": f"Bearer {secret}"}):
        response = post(gateway, body, {**headers, "anthropic-version": "2023-06-01"})
        assert response.status_code == 200, response.text
        assert response.json()["content"][0]["text"] == "Mock reply to: hi"


def test_errors_use_anthropic_shapes(mock_upstream_url, gateway, secret):
    deploy(mock_upstream_url, "openai")
    body = {"model": "simple_ops", "max_tokens": 50, "messages": user("hi")}
    no_key = post(gateway, body, {})
    assert no_key.status_code == 401
    assert no_key.json()["type"] == "error" and no_key.json()["error"]["type"] == "authentication_error"
    assert no_key.headers.get("x-request-id")

    missing = post(gateway, {"model": "simple_ops", "messages": user("hi")}, {"x-api-key": secret})
    assert missing.status_code == 400
    assert missing.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "Missing required parameter: 'max_tokens'."},
    }


def test_the_sdk_raises_its_own_error_classes(mock_upstream_url, gateway, client):
    deploy(mock_upstream_url, "openai")
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="simple_ops", max_tokens=0, messages=user("hi"))
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    wrong = anthropic.Anthropic(base_url=gateway, api_key="gw-not-a-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as denied:
        wrong.messages.create(model="simple_ops", max_tokens=10, messages=user("hi"))
    assert denied.value.body["error"]["type"] == "authentication_error"


def sse_events(response: httpx2.Response) -> list[tuple[str, str]]:
    """(event name, data) pairs; comments as ("comment", line)."""
    events: list[tuple[str, str]] = []
    name = ""
    for line in response.iter_lines():
        if line.startswith(":"):
            events.append(("comment", line))
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, line[6:]))
    return events


def stream_raw(gateway: str, secret: str, text: str) -> list[tuple[str, str]]:
    body = {"model": "simple_ops", "max_tokens": 100, "stream": True, "messages": user(text)}
    headers = {"x-api-key": secret}
    with httpx2.stream("POST", f"{gateway}/v1/messages", json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        return sse_events(response)


def test_a_silent_upstream_gets_pings_and_the_cost_follows(mock_upstream_url, gateway, secret):
    deploy(mock_upstream_url, "openai")
    events = stream_raw(gateway, secret, "slow start [[mock: ttft=1.3]]")
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[1] == "ping"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert any(data.startswith(": x-gateway-cost-usd=") for name, data in events if name == "comment")


def test_a_stream_failing_midway_ends_with_an_error_event(mock_upstream_url, gateway, secret):
    deploy(mock_upstream_url, "openai")
    events = stream_raw(gateway, secret, "break [[mock: words=20 drop_after=3]]")
    assert "content_block_delta" in [name for name, _ in events]
    name, data = events[-1]
    assert name == "error"
    assert orjson.loads(data)["type"] == "error" and orjson.loads(data)["error"]["type"] == "api_error"


def test_count_tokens_estimates_without_calling_a_provider(gateway_url, mock_upstream_url):
    make_model(make_provider(f"{mock_upstream_url}/v1", name="count-prov"), name="counted")
    _, secret = make_key()
    client = anthropic.Anthropic(base_url=gateway_url, api_key=secret, max_retries=0)
    short = client.messages.count_tokens(model="counted", messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(
        model="counted", system="You are careful.", messages=[{"role": "user", "content": "hi " * 400}]
    )
    assert 0 < short.input_tokens < long.input_tokens
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "hi"}])

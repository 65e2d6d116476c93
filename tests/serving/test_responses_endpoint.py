"""``/v1/responses`` with the official openai SDK against a real Daphne gateway and the mock upstream.

Every upstream wire format (OpenAI-compatible, Anthropic, Ollama) serves it
through the chat flow; ``store: true`` answers continue with
``previous_response_id`` and are tenant-scoped.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import orjson
import pytest

from routing.aliases.section import apply_aliases_section
from serving.models import StoredResponse
from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

ANTHROPIC_KEY_ENV = "RESPONSES_TEST_ANTHROPIC_KEY"
BACKENDS = ("openai", "anthropic", "ollama")
TOOLS = [
    {
        "type": "function",
        "name": "search_files",
        "description": "Search the repository.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        "strict": False,
    }
]


@pytest.fixture(scope="module")
def gateway(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
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
    make_tier("code_gen", [model])
    assert apply_aliases_section([{"pattern": "gpt-*codex*", "target": "code_gen"}], "upsert") == []


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, mock_upstream_url: str) -> str:
    deploy(mock_upstream_url, request.param)
    return str(request.param)


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    return make_key()[1]


@pytest.fixture
def client(gateway: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=secret, max_retries=0)


def test_create_answers_a_response_with_usage_headers_and_a_usage_event(backend, client, drained_events):
    raw = client.responses.with_raw_response.create(
        model="gpt-5.5-codex", instructions="Be brief.", input="hello gateway", store=False
    )
    response = raw.parse()
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.model == "gpt-5.5-codex"
    assert response.output_text == "Mock reply to: hello gateway"
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens == 5
    assert raw.headers["x-gateway-alias"] == "code_gen" and raw.headers["x-gateway-tier"] == "code_gen"
    assert raw.headers["x-gateway-model"] == "mock-small"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.endpoint == "responses" and event.status_code == 200
    assert event.requested_model == "gpt-5.5-codex" and event.model == "mock-small"
    assert event.completion_tokens == 5 and event.cost_usd > 0
    assert not StoredResponse.objects.exists()  # store: false


def test_stream_sends_the_event_sequence_and_the_final_response(backend, client, drained_events):
    with client.responses.stream(model="code_gen", input="stream please [[mock: words=3]]", store=False) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
    assert final.output_text.startswith("Mock reply to: stream please") and final.output_text.endswith("dolor")
    assert final.usage is not None and final.usage.output_tokens == len(final.output_text.split())
    [event] = drained_events(1, endpoint="responses")
    assert event.stream and event.status_code == 200 and event.completion_tokens == final.usage.output_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_round_trip_with_function_call_items(backend, client, stream):
    prompt = "find the config [[mock: tool]]"
    if stream:
        with client.responses.stream(model="code_gen", input=prompt, tools=TOOLS, store=False) as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(model="code_gen", input=prompt, tools=TOOLS, store=False)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "search_files" and orjson.loads(call.arguments)["query"].startswith("find the config")
    followup = client.responses.create(
        model="code_gen",
        tools=TOOLS,
        store=False,
        input=[
            {"role": "user", "content": prompt},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "settings.py"},
        ],
    )
    assert followup.output_text == "Tool result received: settings.py"


def test_stored_responses_continue_and_are_tenant_scoped(mock_upstream_url, gateway, client, secret):
    deploy(mock_upstream_url, "openai")
    first = client.responses.create(model="code_gen", input="remember the number 7")
    assert StoredResponse.objects.filter(pk=first.id).exists()
    second = client.responses.create(model="code_gen", input="which number?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert second.output_text == "Mock reply to: which number?"
    stored = StoredResponse.objects.get(pk=second.id)
    texts = orjson.dumps(stored.conversation).decode()
    assert "remember the number 7" in texts and "Mock reply to: remember the number 7" in texts

    assert client.responses.retrieve(first.id).output_text == first.output_text
    other = openai.OpenAI(base_url=f"{gateway}/v1", api_key=make_key(make_team("other"))[1], max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model="code_gen", input="x", previous_response_id=first.id)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]

    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "code_gen", "input": [{"type": "bogus"}]}, "input[0].type"),
        ({"model": "code_gen", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        (
            {"model": "code_gen", "input": "x", "tools": [{"type": "function", "name": "f", "parameters": "no"}]},
            "tools[0].parameters",
        ),
        ({"model": "code_gen", "input": "x", "tools": [{"type": "hologram"}]}, "tools[0].type"),
        ({"model": "code_gen"}, "input"),
        ({"model": "no-such-model", "input": "x"}, "model"),
    ],
)
def test_bad_input_is_a_400_in_the_openai_error_shape(mock_upstream_url, gateway, secret, body, param, drained_events):
    deploy(mock_upstream_url, "openai")
    answer = httpx2.post(
        f"{gateway}/v1/responses", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]
    [event] = drained_events(1, request_id=answer.headers["x-request-id"])
    assert event.status_code == 400 and event.cost_usd == 0


def test_unknown_ids_too_large_bodies_and_missing_keys(mock_upstream_url, gateway, secret):
    headers = {"Authorization": f"Bearer {secret}"}
    missing = httpx2.get(f"{gateway}/v1/responses/resp_nope", headers=headers, timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "response_not_found"
    assert httpx2.delete(f"{gateway}/v1/responses/resp_nope", headers=headers, timeout=10).status_code == 404
    huge = {"model": "code_gen", "input": "x" * 1_100_000}
    assert httpx2.post(f"{gateway}/v1/responses", json=huge, headers=headers, timeout=30).status_code == 413
    assert httpx2.post(f"{gateway}/v1/responses", json={"model": "m", "input": "x"}, timeout=10).status_code == 401


def test_models_lists_exact_aliases(mock_upstream_url, client):
    deploy(mock_upstream_url, "openai")
    apply_aliases_section([{"pattern": "sonnet", "target": "code_gen"}], "upsert")
    listed = {model.id: model.owned_by for model in client.models.list()}
    assert listed["sonnet"] == "gateway-alias" and listed["code_gen"] == "gateway-tier"
    assert "gpt-*codex*" not in listed


def test_a_stream_that_fails_after_it_started_ends_with_response_failed(mock_upstream_url, gateway, secret):
    deploy(mock_upstream_url, "openai")
    body = {"model": "code_gen", "input": "long answer [[mock: words=40 drop_after=3]]", "stream": True, "store": True}
    with httpx2.stream(
        "POST", f"{gateway}/v1/responses", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    ) as answer:
        assert answer.status_code == 200
        raw = b"".join(answer.iter_bytes())
    events = [orjson.loads(line[6:]) for line in raw.splitlines() if line.startswith(b"data: ")]
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["message"]
    assert not StoredResponse.objects.exists()  # a failed response is not kept


def test_input_tokens_estimates_a_body_without_calling_a_provider(mock_upstream_url, gateway, secret, drained_events):
    deploy(mock_upstream_url, "openai")
    headers = {"Authorization": f"Bearer {secret}"}
    short = httpx2.post(
        f"{gateway}/v1/responses/input_tokens",
        json={"model": "gpt-5-codex", "input": "hi"},
        headers=headers,
        timeout=10,
    )
    long = httpx2.post(
        f"{gateway}/v1/responses/input_tokens",
        json={"model": "code_gen", "input": "hello " * 200, "tools": TOOLS},
        headers=headers,
        timeout=10,
    )
    assert short.status_code == 200 and short.json()["object"] == "response.input_tokens"
    assert 0 < short.json()["input_tokens"] < long.json()["input_tokens"]
    unknown = httpx2.post(
        f"{gateway}/v1/responses/input_tokens", json={"model": "nope", "input": "x"}, headers=headers, timeout=10
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "model"

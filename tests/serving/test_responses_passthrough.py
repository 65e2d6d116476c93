"""``/v1/responses`` to a provider with ``supports_responses`` is a pass-through (openai SDK, mock upstream).

The mock serves ``POST /v1/responses``, records a digest of every body, refuses
``previous_response_id`` (it stores nothing) and reasoning items whose
``encrypted_content`` it did not issue, so these tests see what reached it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest
import yaml
from django.core.management import call_command

from providers.models import Provider
from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = [
    {
        "type": "function",
        "name": "shell",
        "description": "Run a command.",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        "strict": False,
    },
    {"type": "web_search"},  # a hosted tool: a chat upstream cannot run it, a Responses upstream gets it
]


@pytest.fixture(scope="module")
def gateway(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    proc, url = start_gateway()
    yield url
    stop_process(proc)


@pytest.fixture
def secret(gateway: str, mock_upstream_url: str) -> str:
    """``code_gen``: a Responses-speaking deployment first, a chat-only one as its fallback."""
    native = make_provider(f"{mock_upstream_url}/v1", kind="openai", name="resp-up", supports_responses=True)
    chat = make_provider(f"{mock_upstream_url}/v1", kind="openai", name="chat-up")
    make_tier(
        "code_gen",
        [
            make_model(native, name="gpt-native", upstream_model="gpt-native-1"),
            make_model(chat, name="gpt-chat", upstream_model="gpt-chat-1"),
        ],
    )
    httpx2.delete(f"{mock_upstream_url}/_mock/events")
    return make_key()[1]


def sdk(gateway: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=secret, max_retries=0)


def digest(body: dict[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k != "model"}
    return hashlib.sha256(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)).hexdigest()


def seen(mock_upstream_url: str, path: str = "/v1/responses") -> list[dict[str, Any]]:
    return [e for e in httpx2.get(f"{mock_upstream_url}/_mock/events").json() if e["path"] == path]


def codex_body(text: str, **extra: Any) -> dict[str, Any]:
    """What Codex CLI sends (tests/agents/fixtures), plus a field no gateway knows yet."""
    return {
        "model": "code_gen",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: none."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        ],
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-1",
        "client_metadata": {"originator": "codex_exec"},
        "future_field": {"nested": [1, None]},
        **extra,
    }


def post(gateway: str, secret: str, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(f"{gateway}/v1/responses", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def test_the_clients_body_reaches_the_upstream_unchanged(gateway: str, secret: str, mock_upstream_url: str) -> None:
    body = codex_body("hello there")
    answer = post(gateway, secret, {**body, "smart_routing": False})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-provider"] == "resp-up"
    (request,) = seen(mock_upstream_url)
    assert request["model"] == "gpt-native-1" and request["body_sha256"] == digest(body)
    assert not seen(mock_upstream_url, "/v1/chat/completions")
    response = answer.json()
    assert response["id"].startswith("resp_") and response["model"] == "code_gen"
    assert [item["type"] for item in response["output"]] == ["reasoning", "message"]
    assert response["output"][0]["encrypted_content"]  # the upstream's reasoning, relayed
    assert response["output"][1]["content"][0]["text"] == "Mock reply to: hello there"
    assert response["usage"]["input_tokens"] > 0


def test_create_and_stream_with_the_sdk_are_accounted(
    gateway: str, secret: str, drained_events: Callable[..., list[Any]]
) -> None:
    client = sdk(gateway, secret)
    created = client.responses.create(model="code_gen", input="say hi", store=False)
    assert created.output_text == "Mock reply to: say hi"
    with client.responses.stream(model="code_gen", input="stream hi [[mock: words=3]]", store=False) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and "response.content_part.done" in kinds
    assert final.output_text.startswith("Mock reply to: stream hi") and final.model == "code_gen"
    events = drained_events(2, endpoint="responses", status_code=200, provider="resp-up")
    assert {e.provider for e in events} == {"resp-up"} and {e.stream for e in events} == {False, True}
    for event in events:
        assert event.prompt_tokens > 0 and event.completion_tokens > 0 and event.cost_usd > 0
        assert not event.tokens_estimated


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_round_trip_with_reasoning_carried_back(
    gateway: str, secret: str, mock_upstream_url: str, stream: bool
) -> None:
    client = sdk(gateway, secret)
    body = codex_body("list files [[mock: tool]]")
    rest = {k: v for k, v in body.items() if k not in ("future_field", "client_metadata")}
    extra = {"extra_body": {"future_field": body["future_field"], "client_metadata": body["client_metadata"]}}
    if stream:
        with client.responses.stream(**rest, **extra) as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(**rest, **extra)
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and call.type == "function_call" and call.name == "shell"
    follow = [
        *rest["input"],
        reasoning.model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "a.txt b.txt"},
    ]
    # The mock verifies the reasoning item's encrypted_content: a 200 proves it came back unchanged.
    second = client.responses.create(**{**rest, "input": follow}, **extra)
    assert second.output_text == "Tool result received: a.txt b.txt"


def test_stored_conversations_continue_through_the_pass_through(
    gateway: str, secret: str, mock_upstream_url: str
) -> None:
    client = sdk(gateway, secret)
    first = client.responses.create(model="code_gen", input="remember blue")
    second = client.responses.create(model="code_gen", input="what colour?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.id != first.id
    # The mock refuses previous_response_id: the stored items went upstream as input instead.
    second_request = seen(mock_upstream_url)[-1]
    assert "previous_response_id" not in second_request["fields"]
    assert client.responses.retrieve(second.id).output_text == second.output_text
    items = [item.model_dump() for item in client.responses.input_items.list(second.id, order="asc")]
    assert [item["role"] for item in items] == ["user", "assistant", "user"]


@pytest.mark.parametrize("stream", [False, True])
def test_failover_to_a_chat_deployment_uses_the_translation(
    gateway: str, secret: str, mock_upstream_url: str, stream: bool
) -> None:
    body = codex_body("fail over [[mock: status=500 model=gpt-native-1]]", stream=stream)
    answer = post(gateway, secret, body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-provider"] == "chat-up"
    if stream:
        assert "event: response.completed" in answer.text and "Mock reply to: fail" in answer.text
    else:
        assert answer.json()["output"][-1]["content"][0]["text"].startswith("Mock reply to: fail over")
    (chat,) = seen(mock_upstream_url, "/v1/chat/completions")
    assert "future_field" not in chat["fields"]  # the translation carries only what chat understands


def test_bad_input_is_refused_before_any_upstream(gateway: str, secret: str, mock_upstream_url: str) -> None:
    for patch, param, status in (
        ({"input": [{"type": "hologram"}]}, "input[0].type", 400),
        ({"tools": [{"type": "function", "name": "f", "parameters": {"type": "string"}}]}, "tools[0].parameters", 400),
        ({"previous_response_id": "resp_nope"}, "previous_response_id", 404),
    ):
        answer = post(gateway, secret, {"model": "code_gen", "input": "hi", **patch})
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error"
    assert not seen(mock_upstream_url)


def test_the_setting_round_trips_through_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "providers:\n"
        "  - name: openai-native\n"
        "    kind: openai\n"
        "    base_url: https://api.openai.com/v1\n"
        "    supports_responses: true\n"
        "  - name: openai-chat\n"
        "    kind: openai\n"
        "    base_url: https://example.com/v1\n"
    )
    call_command("import_config", str(path), stdout=io.StringIO())
    assert Provider.objects.get(name="openai-native").supports_responses
    assert not Provider.objects.get(name="openai-chat").supports_responses
    out = io.StringIO()
    call_command("export_config", stdout=out)
    exported = {p["name"]: p for p in yaml.safe_load(out.getvalue())["providers"]}
    assert exported["openai-native"]["supports_responses"] is True
    assert "supports_responses" not in exported["openai-chat"]


def test_altered_reasoning_is_the_upstreams_400_in_the_openai_shape(gateway: str, secret: str) -> None:
    first = post(gateway, secret, codex_body("think"))
    reasoning = first.json()["output"][0]
    altered = {**reasoning, "encrypted_content": reasoning["encrypted_content"] + "x"}
    body = codex_body("again")
    body["input"] = [*body["input"], altered]
    answer = post(gateway, secret, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and "encrypted_content" in error["message"]


def test_a_relayed_stream_that_breaks_ends_with_response_failed(
    gateway: str, secret: str, drained_events: Callable[..., list[Any]]
) -> None:
    body = {"model": "code_gen", "stream": True, "input": "break [[mock: drop_after=2 words=6 model=gpt-native-1]]"}
    answer = post(gateway, secret, body)
    assert answer.status_code == 200  # the stream had started
    names = [line.removeprefix("event: ") for line in answer.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "response.created" and names[-1] == "response.failed"
    assert "response.completed" not in names
    failed = orjson.loads(answer.text.rsplit("data: ", 1)[1])
    assert failed["response"]["status"] == "failed" and failed["response"]["id"].startswith("resp_")
    assert failed["sequence_number"] == len(names) - 1
    (event,) = drained_events(1, endpoint="responses", provider="resp-up", error_code="upstream_disconnected")
    assert event.stream and event.completion_tokens > 0

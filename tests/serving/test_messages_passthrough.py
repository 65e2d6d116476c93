"""``/v1/messages`` to an Anthropic upstream is a pass-through: the client's body goes as it came.

The mock upstream signs the thinking blocks it sends and refuses any that come
back changed (as Anthropic does), and records a digest of every body it got,
so these tests see exactly what reached the upstream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from caching.models import CachePolicy
from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

KEY_ENV = "PASSTHROUGH_ANTHROPIC_KEY"
CACHED = {"type": "ephemeral"}
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14"
TOOLS = [
    {
        "name": "Write",
        "description": "Write a file.",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
        "cache_control": CACHED,
    }
]


@pytest.fixture(scope="module")
def gateway(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    proc, url = start_gateway(**{KEY_ENV: "mock-anthropic-key"})
    yield url
    stop_process(proc)


@pytest.fixture
def secret(gateway: str, mock_upstream_url: str) -> str:
    """``code_gen``: an Anthropic deployment first, an OpenAI one as its fallback."""
    claude = make_provider(mock_upstream_url, kind="anthropic", name="claude-up", api_key_env=KEY_ENV)
    gpt = make_provider(f"{mock_upstream_url}/v1", kind="openai", name="gpt-up")
    make_tier(
        "code_gen",
        [
            make_model(claude, name="claude-main", upstream_model="claude-main-1"),
            make_model(gpt, name="gpt-backup", upstream_model="gpt-backup-1"),
        ],
    )
    httpx2.delete(f"{mock_upstream_url}/_mock/events")
    return make_key()[1]


def client(gateway: str, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=secret, max_retries=0)


def digest(body: dict[str, Any]) -> str:
    """What the mock records: SHA-256 of the body without ``model``, keys sorted."""
    rest = {k: v for k, v in body.items() if k != "model"}
    return hashlib.sha256(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)).hexdigest()


def upstream_requests(mock_upstream_url: str, path: str = "/v1/messages") -> list[dict[str, Any]]:
    return [e for e in httpx2.get(f"{mock_upstream_url}/_mock/events").json() if e["path"] == path]


def claude_code_body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """What Claude Code sends (tests/agents/fixtures), plus a field no gateway knows yet."""
    return {
        "model": "code_gen",
        "max_tokens": 4000,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332"},
            {"type": "text", "text": "You are a coding agent.", "cache_control": CACHED},
        ],
        "messages": messages,
        "tools": TOOLS,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "medium"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": '{"device_id":"abc","session_id":"s1"}'},
        "future_field": {"nested": [1, "two", {"three": None}]},
        **extra,
    }


def sdk_args(body: dict[str, Any]) -> dict[str, Any]:
    """The same body as ``anthropic`` SDK arguments (fields the SDK does not type go in ``extra_body``)."""
    extra = {k: body[k] for k in ("context_management", "future_field") if k in body}
    rest = {k: v for k, v in body.items() if k not in extra}
    return {**rest, "extra_body": extra, "extra_query": {"beta": "true"}, "extra_headers": {"anthropic-beta": BETAS}}


def post(gateway: str, secret: str, body: dict[str, Any], **headers: str) -> httpx2.Response:
    return httpx2.post(
        f"{gateway}/v1/messages?beta=true",
        json=body,
        headers={"x-api-key": secret, "anthropic-version": "2023-06-01", "anthropic-beta": BETAS, **headers},
        timeout=30,
    )


def test_the_clients_body_headers_and_query_reach_the_upstream_unchanged(
    gateway: str, secret: str, mock_upstream_url: str
) -> None:
    body = claude_code_body(
        [
            {"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": CACHED}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}], "output_config": {}},
        ]
    )
    answer = post(gateway, secret, {**body, "smart_routing": False})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-provider"] == "claude-up"
    (seen,) = upstream_requests(mock_upstream_url)
    assert seen["model"] == "claude-main-1"
    assert seen["body_sha256"] == digest(body)  # the gateway's own fields left out, nothing else changed
    assert "future_field" in seen["fields"] and "context_management" in seen["fields"]
    assert seen["query"] == "beta=true"
    assert seen["headers"]["anthropic-beta"] == BETAS
    message = answer.json()
    assert [block["type"] for block in message["content"]] == ["thinking", "redacted_thinking", "text"]
    assert message["model"] == "code_gen"  # the upstream's answer as it came, named as the client asked
    assert message["usage"]["input_tokens"] > 0


def test_thinking_blocks_round_trip_with_their_signatures(gateway: str, secret: str, mock_upstream_url: str) -> None:
    sdk = client(gateway, secret)
    first = sdk.messages.create(**sdk_args(claude_code_body([{"role": "user", "content": "plan it"}])))
    thinking = [block.model_dump() for block in first.content if block.type in ("thinking", "redacted_thinking")]
    assert [b["type"] for b in thinking] == ["thinking", "redacted_thinking"]
    assert thinking[0]["signature"]
    history = [
        {"role": "user", "content": "plan it"},
        {"role": "assistant", "content": [*thinking, {"type": "text", "text": first.content[-1].text}]},
        {"role": "user", "content": "go on"},
    ]
    # The mock refuses a thinking block that is not byte for byte what it signed: this 200 proves the round trip.
    second = sdk.messages.create(**sdk_args(claude_code_body(history)))
    assert second.content[-1].type == "text"

    tampered = [{**thinking[0], "thinking": thinking[0]["thinking"] + " (edited)"}, thinking[1]]
    history[1] = {"role": "assistant", "content": [*tampered, {"type": "text", "text": "x"}]}
    answer = post(gateway, secret, claude_code_body(history))
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "signature" in error["error"]["message"]


def test_a_stream_relays_the_upstreams_events_and_is_accounted(
    gateway: str, secret: str, mock_upstream_url: str, drained_events: Callable[..., list[Any]]
) -> None:
    sdk = client(gateway, secret)
    body = claude_code_body([{"role": "user", "content": "stream it"}])
    with sdk.messages.stream(**sdk_args(body)) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds.count("thinking") == 1 and kinds.count("signature") == 1
    assert [block.type for block in final.content] == ["thinking", "redacted_thinking", "text"]
    assert final.content[2].text == "Mock reply to: stream it"
    thinking = [block.model_dump() for block in final.content[:2]]
    # A streamed signature round-trips too.
    again = sdk.messages.create(
        **sdk_args(
            claude_code_body(
                [
                    {"role": "user", "content": "stream it"},
                    {"role": "assistant", "content": [*thinking, {"type": "text", "text": final.content[2].text}]},
                    {"role": "user", "content": "thanks"},
                ]
            )
        )
    )
    assert again.stop_reason == "end_turn"
    events = drained_events(2, endpoint="messages", status_code=200, provider="claude-up")
    streamed = next(e for e in events if e.stream)
    assert streamed.provider == "claude-up" and streamed.prompt_tokens > 0 and streamed.completion_tokens > 0
    assert streamed.cost_usd > 0 and not streamed.tokens_estimated


def test_raw_events_pass_unchanged(gateway: str, secret: str) -> None:
    body = claude_code_body([{"role": "user", "content": "raw please"}], stream=True)
    with httpx2.stream(
        "POST", f"{gateway}/v1/messages", json=body, headers={"x-api-key": secret}, timeout=30
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        text = b"".join(answer.iter_bytes()).decode()
    names = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "signature_delta" in text and "data: [DONE]" not in text
    assert "chat.completion.chunk" not in text  # the chat translation never reaches an Anthropic client


def test_failover_to_an_openai_deployment_uses_the_translation(
    gateway: str, secret: str, mock_upstream_url: str
) -> None:
    body = claude_code_body([{"role": "user", "content": "fail [[mock: status=500 model=claude-main-1]]"}])
    for stream in (False, True):
        answer = post(gateway, secret, {**body, "stream": stream})
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-gateway-provider"] == "gpt-up"
        if not stream:  # then the Anthropic deployment's circuit may be open: skipped, not failed
            assert int(answer.headers["x-gateway-fallback"]) >= 1
        if stream:
            assert "event: message_stop" in answer.text and '"text":" fail"' in answer.text, answer.text
            assert "thinking" not in answer.text
        else:
            message = answer.json()
            assert message["content"][0]["type"] == "text"  # no thinking from a chat upstream
            assert message["content"][0]["text"].startswith("Mock reply to: fail")
    chat = upstream_requests(mock_upstream_url, "/v1/chat/completions")
    assert len(chat) == 2 and "thinking" not in chat[0]["fields"]


def test_a_rewritten_conversation_is_translated_instead(gateway: str, secret: str, mock_upstream_url: str) -> None:
    """A tool result over TOOL_RESULT_MAX_CHARS is capped: the gateway changed the request, so no pass-through."""
    history = [
        {"role": "user", "content": "read it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x" * 30_000}]},
    ]
    answer = post(gateway, secret, claude_code_body(history))
    assert answer.status_code == 200, answer.text
    assert [block["type"] for block in answer.json()["content"]] == ["text"]
    (seen,) = upstream_requests(mock_upstream_url)
    assert "thinking" not in seen["fields"] and "future_field" not in seen["fields"]


def test_a_passed_through_answer_is_cached_and_replayed(
    gateway: str, secret: str, wait_for_entries: Callable[..., list[Any]]
) -> None:
    """The cache stores the chat translation of a relayed stream; a hit is answered in Anthropic's shape."""
    CachePolicy.objects.create(tenant=None)  # without a global policy the cache is off
    body = {"model": "code_gen", "max_tokens": 200, "messages": [{"role": "user", "content": "cache this answer"}]}
    first = post(gateway, secret, {**body, "stream": True})
    assert first.status_code == 200 and first.headers["x-gateway-cache"] == "MISS", first.text
    assert wait_for_entries(1)
    for stream in (False, True):
        again = post(gateway, secret, {**body, "stream": stream})
        assert again.headers["x-gateway-cache"] == "HIT", again.text
        if stream:
            assert "event: message_stop" in again.text and "cache" in again.text
        else:
            assert again.json()["content"] == [{"type": "text", "text": "Mock reply to: cache this answer"}]


def test_a_relayed_stream_that_breaks_ends_with_an_anthropic_error_event(
    gateway: str, secret: str, drained_events: Callable[..., list[Any]]
) -> None:
    body = {
        "model": "code_gen",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "break [[mock: drop_after=2 words=6 model=claude-main-1]]"}],
    }
    answer = post(gateway, secret, body)
    assert answer.status_code == 200  # the stream had started
    names = [line.removeprefix("event: ") for line in answer.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names
    error = orjson.loads(answer.text.rsplit("data: ", 1)[1])
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    (event,) = drained_events(1, endpoint="messages", provider="claude-up", error_code="upstream_disconnected")
    assert event.stream and event.completion_tokens > 0  # what was generated is billed


def test_an_upstream_refusal_keeps_anthropics_error_shape(gateway: str, secret: str) -> None:
    messages = [{"role": "user", "content": "no [[mock: status=400]]"}]
    body = {"model": "code_gen", "max_tokens": 100, "messages": messages}
    for stream in (False, True):
        answer = post(gateway, secret, {**body, "stream": stream})
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "invalid_request_error"

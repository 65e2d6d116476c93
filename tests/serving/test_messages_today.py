"""``/v1/messages`` accepts today's Messages API (the anthropic SDK 2.x and Claude Code), on every backend."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx2
import pytest

from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)

ANTHROPIC_KEY_ENV = "MESSAGES_TODAY_ANTHROPIC_KEY"
BACKENDS = ("openai", "anthropic", "ollama")
CACHED = {"type": "ephemeral"}
TOOLS = [
    {
        "name": "Write",
        "description": "Write a file.",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
        "cache_control": CACHED,
        "defer_loading": False,
    }
]


@pytest.fixture(scope="module")
def gateway(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    proc, url = start_gateway(**{ANTHROPIC_KEY_ENV: "mock-anthropic-key"})
    yield url
    stop_process(proc)


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, gateway: str, mock_upstream_url: str) -> anthropic.Anthropic:
    kind = request.param
    base = f"{mock_upstream_url}/v1" if kind == "openai" else mock_upstream_url
    extra = {"api_key_env": ANTHROPIC_KEY_ENV} if kind == "anthropic" else {}
    provider = make_provider(base, kind=kind, name="mockai", **extra)
    make_tier("code_gen", [make_model(provider, name="mock-small", upstream_model="mock-small-1")])
    return anthropic.Anthropic(base_url=gateway, api_key=make_key()[1], max_retries=0)


def claude_code_request(messages: list[dict[str, object]]) -> dict[str, object]:
    """The shape Claude Code 2.1.332 sends (tests/agents/fixtures/claude-code-2.1.332-messages.json)."""
    return {
        "model": "code_gen",
        "max_tokens": 4000,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332"},
            {"type": "text", "text": "You are a coding agent.", "cache_control": CACHED},
        ],
        "messages": messages,
        "tools": TOOLS,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "medium"},
        "cache_control": CACHED,
        "metadata": {"user_id": '{"device_id":"abc","session_id":"s1"}'},
        "extra_body": {"context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}},
        "extra_query": {"beta": "true"},
        "extra_headers": {"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"},
    }


def test_system_messages_inside_messages_thinking_and_cache_control(client: anthropic.Anthropic) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "hello there", "cache_control": CACHED}]},
        {
            "role": "system",
            "content": [{"type": "text", "text": "# Environment", "cache_control": CACHED}],
            "output_config": {"effort": "medium"},
        },
    ]
    message = client.messages.create(**claude_code_request(messages))  # type: ignore[arg-type]
    # An Anthropic upstream gets the thinking settings (pass-through) and thinks first; the others cannot.
    text = [block for block in message.content if block.type != "thinking" and block.type != "redacted_thinking"]
    assert text[0].type == "text" and text[0].text == "Mock reply to: hello there"
    assert message.model == "code_gen"


def test_thinking_blocks_with_signatures_in_the_history_are_accepted(
    request: pytest.FixtureRequest, client: anthropic.Anthropic
) -> None:
    """Accepted and dropped for chat upstreams; an Anthropic upstream gets them unchanged and judges them.

    (Real signatures round-trip in ``test_messages_passthrough``; these are made up, so the mock refuses them.)
    """
    messages = [
        {"role": "user", "content": "write it"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should write.", "signature": "sig-abc"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"file_path": "a"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "written", "cache_control": CACHED},
                {"type": "text", "text": "<system-reminder>ok</system-reminder>"},
            ],
        },
    ]
    if request.node.callspec.params["client"] == "anthropic":
        with pytest.raises(anthropic.BadRequestError, match="signature"):
            client.messages.create(**claude_code_request(messages))  # type: ignore[arg-type]
        return
    with client.messages.stream(**claude_code_request(messages)) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    # The Anthropic wire format sees the tool result in the last user turn; chat formats see the text after it.
    assert final.content[0].type == "text"
    assert final.content[0].text in (
        "Tool result received: written",
        "Mock reply to: <system-reminder>ok</system-reminder>",
    )


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"thinking": {"type": "sometimes"}}, "thinking"),
        ({"thinking": {"type": "enabled"}}, "budget_tokens"),
        ({"output_config": {"effort": "extreme"}}, "effort"),
        ({"context_management": {"edits": "all"}}, "context_management"),
        ({"tools": [{"name": "f", "input_schema": {"type": "string"}}]}, "input_schema"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "hologram"}]}]}, "hologram"),
    ],
)
def test_malformed_fields_are_a_400_in_anthropics_shape(
    gateway: str, client: anthropic.Anthropic, patch: dict[str, object], fragment: str
) -> None:
    body = {"model": "code_gen", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **patch}
    answer = httpx2.post(
        f"{gateway}/v1/messages?beta=true", json=body, headers={"x-api-key": client.api_key}, timeout=30
    )
    assert answer.status_code == 400, answer.text
    payload = answer.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"]

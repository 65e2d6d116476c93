"""Pure parts of the pass-through adapters: native bodies and the chat translation that rides along."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from gateway_platform.errors import GatewayError
from providers.adapters.anthropic import build_native_request, has_cache_control
from providers.adapters.base import Deployment, NativeRequest, ProviderConfig
from providers.adapters.openai_responses import EventTranslator, parse_response


def deployment(kind: str = "anthropic") -> Deployment:
    provider = ProviderConfig(
        id=1,
        name="up",
        kind=kind,
        base_url="http://upstream",
        api_key=None,
        connect_timeout=1,
        read_timeout=1,
        total_timeout=1,
        max_connections=1,
    )
    return Deployment(
        model_id=1,
        name="public",
        upstream_model="upstream-1",
        provider=provider,
        input_cost_per_million=Decimal(1),
        output_cost_per_million=Decimal(1),
        context_window=1000,
        max_output_tokens=None,
    )


MESSAGES = [
    {"role": "user", "content": "one"},
    {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]},
    {"role": "user", "content": "two"},
]


def test_it_replaces_only_the_model_of_a_body_with_its_own_breakpoints() -> None:
    body = {"model": "code_gen", "max_tokens": 5, "messages": MESSAGES, "cache_control": {"type": "ephemeral"}}
    sent = build_native_request(deployment(), NativeRequest("anthropic.messages", body), stream=True, caching=True)
    assert sent == {**body, "model": "upstream-1", "stream": True}
    assert has_cache_control(body)


def test_it_marks_breakpoints_on_a_copy_when_the_client_placed_none() -> None:
    body = {"model": "code_gen", "max_tokens": 5, "system": "sys", "messages": MESSAGES}
    before = orjson.dumps(body)
    sent = build_native_request(deployment(), NativeRequest("anthropic.messages", body), stream=False, caching=True)
    assert has_cache_control(sent) and not has_cache_control(body)
    assert orjson.dumps(body) == before  # the client's body is untouched
    assert sent["messages"][1]["content"][0] == MESSAGES[1]["content"][0]  # thinking blocks never marked


def test_a_responses_answer_reads_as_a_chat_completion() -> None:
    raw = orjson.dumps(
        {
            "id": "resp_1",
            "status": "completed",
            "output": [
                {"type": "reasoning", "id": "rs_1", "encrypted_content": "x"},
                {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": '{"cmd":"ls"}'},
            ],
            "usage": {"input_tokens": 10, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 4}},
        }
    )
    completion = parse_response(raw, provider="up", model="public")
    assert completion.raw == raw and completion.finish_reason == "tool_calls"
    assert completion.usage is not None and completion.usage.cached_prompt_tokens == 4
    message = orjson.loads(completion.body)["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "shell", "arguments": '{"cmd":"ls"}'}


def test_a_failed_or_capped_response() -> None:
    failed = orjson.dumps({"status": "failed", "error": {"message": "boom"}, "output": []})
    with pytest.raises(GatewayError, match="boom"):
        parse_response(failed, provider="up", model="public")
    capped = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": []}
    assert parse_response(orjson.dumps(capped), provider="up", model="public").finish_reason == "length"


def test_stream_events_become_chat_chunks_and_usage() -> None:
    translator = EventTranslator(provider="up", model="public")
    assert translator.feed({"type": "response.created", "response": {"id": "resp_1"}})
    (text,) = translator.feed({"type": "response.output_text.delta", "delta": "hi"})
    assert text.text == "hi"
    item = {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": ""}
    (added,) = translator.feed({"type": "response.output_item.added", "output_index": 1, "item": item})
    assert orjson.loads(added.data or b"")["choices"][0]["delta"]["tool_calls"][0]["id"] == "c1"
    (delta,) = translator.feed({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{}"})
    assert b'"arguments":"{}"' in (delta.data or b"")
    done = {"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 2}}}
    finish, usage = translator.feed(done)
    assert finish.finish_reason == "tool_calls" and usage.usage_only and usage.usage is not None
    assert translator.finished
    with pytest.raises(GatewayError):
        EventTranslator(provider="up", model="p").feed({"type": "response.failed", "response": {"error": {}}})

"""A tool result over TOOL_RESULT_MAX_CHARS is cut before it goes upstream, and the saving is recorded."""

from __future__ import annotations

import openai
import pytest

from tests.factories import make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_oversized_tool_result_is_capped_on_the_way_upstream(mock_upstream_url, gateway_url, drained_events):
    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    make_tier("code_gen", [make_model(provider, name="mock-mid", upstream_model="mock-gpt")])
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(make_team())[1], max_retries=0)
    call = {"id": "c1", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}
    raw = client.chat.completions.with_raw_response.create(
        model="code_gen",
        messages=[
            {"role": "user", "content": "run the tests"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "FAILED test_x\n" * 8_000},  # 112,000 chars
        ],
        extra_headers={"X-Gateway-Cache": "no-store"},
    )
    assert raw.parse().choices
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.tokens_saved["message_caps"] > 20_000  # ~92,000 characters cut
    assert event.prompt_tokens < 8_000  # the upstream saw the capped 20,000 characters

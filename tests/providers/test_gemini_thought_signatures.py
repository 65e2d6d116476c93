"""Gemini thought signatures survive the OpenAI and Anthropic round trips through the gateway.

Gemini 3 refuses a conversation whose earlier function call lost its ``thoughtSignature``
(400); the mock does the same for ``gemini-3*`` models. The signature travels inside the
tool call's id (``providers.adapters.gemini``), the one thing every client sends back.
"""

from __future__ import annotations

import re

import anthropic
import openai
import pytest

from providers.adapters.base import Deployment
from providers.adapters.gemini import build_request, encode_call_id, signature_from_id
from tests.conftest import MOCK_PROVIDER_KEY_ENV
from tests.factories import make_key, make_model, make_provider

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


@pytest.mark.parametrize("signature", ["CiQBjz1rX+/abc==", "a", "Zm9v", "x" * 3000, "é+/="])
def test_a_signature_rides_in_the_call_id_exactly(signature: str):
    call_id = encode_call_id("call_0_resp-1", signature)

    assert re.fullmatch(r"[A-Za-z0-9_-]+", call_id)  # also a valid Anthropic tool_use id
    assert signature_from_id(call_id) == signature
    assert call_id.endswith("call_0_resp-1")


@pytest.mark.parametrize("call_id", ["call_0_resp", "gts5_ab", "gts4_!!!!call", "gts", "", None, 42])
def test_an_id_without_a_whole_signature_carries_none(call_id: object):
    assert signature_from_id(call_id) is None


def test_the_signature_goes_back_on_its_function_call_part_only():
    signed = encode_call_id("call_0_r", "c2lnbmVk")
    body = {
        "messages": [
            {"role": "user", "content": "read two files"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": signed, "type": "function", "function": {"name": "read_file", "arguments": "{}"}},
                    {"id": "call_1_r", "type": "function", "function": {"name": "read_file", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": signed, "content": "one"},
            {"role": "tool", "tool_call_id": "call_1_r", "content": "two"},
        ]
    }
    deployment = Deployment(
        model_id=1,
        name="g",
        upstream_model="gemini-3-pro",
        provider=None,  # type: ignore[arg-type]  # build_request reads only the deployment's output cap
        input_cost_per_million=0,  # type: ignore[arg-type]
        output_cost_per_million=0,  # type: ignore[arg-type]
        context_window=1000,
        max_output_tokens=None,
    )

    parts = build_request(deployment, body)["contents"][1]["parts"]

    assert parts[0] == {"functionCall": {"name": "read_file", "args": {}}, "thoughtSignature": "c2lnbmVk"}
    assert parts[1] == {"functionCall": {"name": "read_file", "args": {}}}  # parallel calls: only the first is signed


@pytest.mark.django_db(transaction=True)
def test_a_gemini_3_tool_loop_works_through_the_openai_and_anthropic_apis(gateway_url, mock_upstream_url):
    provider = make_provider(mock_upstream_url, kind="gemini", name="mock-gemini-3", api_key_env=MOCK_PROVIDER_KEY_ENV)
    make_model(provider, name="gemini-three", upstream_model="gemini-3-pro-preview")
    secret = make_key()[1]
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)
    messages: list[dict[str, object]] = [{"role": "user", "content": "open the readme [[mock: tool]]"}]
    calls: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(model="gemini-three", messages=messages, tools=TOOLS, stream=True):
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function.name or "") if delta.function else ""
            call["arguments"] += (delta.function.arguments or "") if delta.function else ""
    call = calls[0]
    assert signature_from_id(call["id"]) is not None

    def follow_up(call_id: str) -> list[dict[str, object]]:
        function = {"name": call["name"], "arguments": call["arguments"]}
        return [
            *messages,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": function}],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "# Readme"},
        ]

    answer = client.chat.completions.create(model="gemini-three", messages=follow_up(call["id"]), tools=TOOLS)
    assert answer.choices[0].message.content == "Tool result received: # Readme"
    # A client that rewrote the id lost the signature: Gemini 3's own 400 reaches it, not a 5xx.
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gemini-three", messages=follow_up("call_rewritten"), tools=TOOLS)
    assert "thought_signature" in caught.value.message

    # The same loop through the Anthropic Messages API (Claude Code talking to a Gemini model).
    claude = anthropic.Anthropic(base_url=gateway_url, api_key=secret, max_retries=0)
    tools = [{"name": "read_file", "description": "Read a file.", "input_schema": TOOLS[0]["function"]["parameters"]}]
    first = claude.messages.create(
        model="gemini-three",
        max_tokens=200,
        tools=tools,
        messages=[{"role": "user", "content": "readme [[mock: tool]]"}],
    )
    use = next(block for block in first.content if block.type == "tool_use")
    assert signature_from_id(use.id) is not None
    second = claude.messages.create(
        model="gemini-three",
        max_tokens=200,
        tools=tools,
        messages=[
            {"role": "user", "content": "readme [[mock: tool]]"},
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "# Readme"}]},
        ],
    )
    assert second.content[0].text == "Tool result received: # Readme"

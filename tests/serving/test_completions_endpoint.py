"""``POST /v1/completions`` (legacy text and fill-in-the-middle): the openai SDK against a real Daphne gateway.

Each behaviour runs against the mock in OpenAI format (pass-through) and in
Ollama format (``/api/generate`` translated); the mock answers both alike.
"""

from __future__ import annotations

import math
import time

import httpx2
import openai
import pytest

from serving.completions import parse_completion_request
from tests.factories import make_key, make_model, make_provider

integration = pytest.mark.django_db(transaction=True)

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
MODELS = {"openai": "code-cloud", "ollama": "code-local"}
KINDS = pytest.mark.parametrize("kind", ["openai", "ollama"])


def tokens(*texts: str) -> int:
    """The mock's prompt token count."""
    return max(1, math.ceil(sum(len(t) for t in texts) / 4))


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    make_model(
        make_provider(f"{mock_upstream_url}/v1", name="mockai"),
        name="code-cloud",
        upstream_model="mock-gpt",
        input_cost="2",
        output_cost="4",
    )
    make_model(
        make_provider(mock_upstream_url, kind="ollama", name="mockollama"),
        name="code-local",
        upstream_model="mock-llama:latest",
        input_cost="2",
        output_cost="4",
    )
    make_model(
        make_provider(mock_upstream_url, kind="anthropic", name="mockclaude"),
        name="claude",
        upstream_model="mock-claude",
    )
    return make_key()[1]


@pytest.fixture
def client(gateway_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)


def post(gateway_url: str, secret: str, body: object) -> httpx2.Response:
    return httpx2.post(
        f"{gateway_url}/v1/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )


def stream(gateway_url: str, secret: str, body: dict[str, object], request_id: str | None = None):
    headers = {"Authorization": f"Bearer {secret}"} | ({"X-Request-Id": request_id} if request_id else {})
    return httpx2.stream(
        "POST", f"{gateway_url}/v1/completions", json={**body, "stream": True}, headers=headers, timeout=30
    )


# --------------------------------------------------------------------------- answers


@integration
@KINDS
def test_it_completes_text_with_usage_headers_and_an_event(client, drained_events, kind):
    raw = client.completions.with_raw_response.create(model=MODELS[kind], prompt="Once upon a time")
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Mock reply to: Once upon a time"
    assert completion.choices[0].finish_reason == "stop" and completion.choices[0].index == 0
    assert completion.usage.prompt_tokens == tokens("Once upon a time")
    assert completion.usage.completion_tokens == 7
    for name in CONTRACT_HEADERS:
        assert raw.headers.get(name), name
    assert raw.headers["x-gateway-model"] == MODELS[kind]
    expected_cost = (completion.usage.prompt_tokens * 2 + 7 * 4) / 1e6
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected_cost)

    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.endpoint == "completions" and event.status_code == 200 and event.model == MODELS[kind]
    assert event.prompt_tokens == completion.usage.prompt_tokens and event.completion_tokens == 7
    assert not event.stream and not event.tokens_estimated
    assert float(event.cost_usd) == pytest.approx(expected_cost)


@integration
@KINDS
def test_fill_in_the_middle_with_suffix(client, kind):
    prefix, suffix = "def add(a, b):\n    return", "\n\nprint(add(1, 2))"
    completion = client.completions.create(model=MODELS[kind], prompt=prefix, suffix=suffix, max_tokens=64)
    text = completion.choices[0].text
    assert text.startswith("Mock fill between: ") and text.endswith("print(add(1, 2))")
    assert completion.usage.prompt_tokens == tokens(prefix, suffix)


@integration
@KINDS
def test_max_tokens_cuts_the_answer(client, kind):
    completion = client.completions.create(model=MODELS[kind], prompt="long [[mock: words=30]]", max_tokens=3)
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 3


@integration
@KINDS
def test_it_streams_and_reports_usage_when_asked(client, drained_events, kind):
    with client.completions.with_streaming_response.create(
        model=MODELS[kind],
        prompt="stream please [[mock: words=4]]",
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for name in CONTRACT_HEADERS:
            assert response.headers.get(name), name
        chunks = list(response.parse())
    assert all(chunk.object == "text_completion" for chunk in chunks)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text.startswith("Mock reply to: stream please") and text.endswith("lorem ipsum dolor sit")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())

    [event] = drained_events(1, request_id=response.headers["x-request-id"])
    assert event.endpoint == "completions" and event.stream and event.ttft_ms is not None
    assert event.completion_tokens == chunks[-1].usage.completion_tokens and not event.tokens_estimated


@integration
@KINDS
def test_the_usage_chunk_is_hidden_unless_asked(client, kind):
    chunks = list(client.completions.create(model=MODELS[kind], prompt="hi", suffix=" there", stream=True))
    assert chunks and all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].text for c in chunks).startswith("Mock fill between: hi")


@integration
@KINDS
def test_the_stream_ends_with_the_cost_and_done(gateway_url, secret, kind):
    with stream(gateway_url, secret, {"model": MODELS[kind], "prompt": "slow start [[mock: ttft=1.3]]"}) as response:
        assert response.headers["x-gateway-cost-usd"] == "pending"
        lines = [line for line in response.iter_lines() if line]
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert lines[:first_data].count(": keep-alive") >= 2  # the test gateway sends one every 0.5 s
    assert lines[-2].startswith(": x-gateway-cost-usd=") and float(lines[-2].split("=")[1]) > 0
    assert lines[-1] == "data: [DONE]"


@integration
@KINDS
def test_a_client_disconnect_cancels_the_upstream_and_is_billed(
    gateway_url, mock_upstream_url, secret, drained_events, kind
):
    body = {"model": MODELS[kind], "prompt": "long answer [[mock: words=200 tps=20]]"}
    with stream(gateway_url, secret, body) as response:
        request_id = response.headers["x-request-id"]  # the gateway's id, which it also sends upstream
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
                if received == 3:
                    break
    deadline = time.monotonic() + 10
    record = None
    while time.monotonic() < deadline:
        records = [r for r in httpx2.get(f"{mock_upstream_url}/_mock/events").json() if r["id"] == request_id]
        if records and records[0]["cancelled"]:
            record = records[0]
            break
        time.sleep(0.1)
    assert record is not None and not record["completed"], "the mock never saw the upstream request cancelled"
    [event] = drained_events(1, request_id=request_id)
    assert event.client_disconnected and event.status_code == 200
    assert event.tokens_estimated and 3 <= event.completion_tokens < 200


@integration
@KINDS
def test_usage_is_estimated_when_the_upstream_reports_none(client, drained_events, kind):
    raw = client.completions.with_raw_response.create(model=MODELS[kind], prompt="count me [[mock: no_usage=1]]")
    assert raw.parse().usage is None
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.tokens_estimated and event.prompt_tokens > 0 and event.completion_tokens > 0


@integration
def test_token_prompts_pass_through_to_openai_compatible_providers(client):
    completion = client.completions.create(model="code-cloud", prompt=[1, 2, 3])
    assert completion.choices[0].text.startswith("Mock reply to:")


# --------------------------------------------------------------------------- errors


@integration
@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "code-cloud"}, "prompt", None),
        ({"model": "code-cloud", "prompt": 5}, "prompt", None),
        ({"model": "code-cloud", "prompt": []}, "prompt", None),
        ({"model": "code-cloud", "prompt": ["a", 1]}, "prompt", None),
        ({"model": "code-cloud", "prompt": "a", "suffix": 3}, "suffix", None),
        ({"model": "code-cloud", "prompt": "a", "max_tokens": -1}, "max_tokens", None),
        ({"model": "code-cloud", "prompt": "a", "stream": "yes"}, "stream", None),
        ({"model": "code-cloud", "prompt": "a", "stream_options": {"include_usage": True}}, "stream_options", None),
        ({"model": "code-cloud", "prompt": "a", "temperature": "hot"}, "temperature", None),
        ({"prompt": "a"}, "model", None),
        ({"model": "no-such-model", "prompt": "a"}, "model", "model_not_found"),
        ({"model": "claude", "prompt": "a"}, "model", "model_not_supported"),
        ({"model": "code-local", "prompt": ["a", "b"]}, "prompt", None),
        ({"model": "code-local", "prompt": [1, 2, 3]}, "prompt", None),
        ({"model": "code-local", "prompt": "a", "n": 2}, "n", None),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(gateway_url, secret, body, param, code):
    response = post(gateway_url, secret, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]
    if code:
        assert error["code"] == code
    assert response.headers["x-request-id"]


@integration
def test_the_sdk_raises_bad_request_for_an_anthropic_model(client):
    with pytest.raises(openai.BadRequestError) as failed:
        client.completions.create(model="claude", prompt="a")
    assert "does not support text completions" in failed.value.message


@integration
def test_an_upstream_failure_is_a_502_in_openai_shape(client):
    with pytest.raises(openai.APIStatusError) as failed:
        client.completions.create(model="code-local", prompt="boom [[mock: status=500]]")
    assert failed.value.status_code == 502
    assert failed.value.response.json()["error"]["code"] == "upstream_error"


# --------------------------------------------------------------------------- parsing (pure)


def test_parsing_measures_prompts_and_drops_gateway_fields():
    request = parse_completion_request(
        b'{"model": "m", "prompt": "abcdefgh", "suffix": "abcd", "smart_routing": true, "stream": true,'
        b' "stream_options": {"include_usage": true}}'
    )
    assert request.plain_prompt and request.prompt_tokens == 3 and request.stream and request.include_usage
    assert "smart_routing" not in request.body and request.body["suffix"] == "abcd"
    batch = parse_completion_request(b'{"model": "m", "prompt": ["a", "b"]}')
    assert not batch.plain_prompt and batch.prompt_tokens == 2
    token_ids = parse_completion_request(b'{"model": "m", "prompt": [[1, 2], [3]]}')
    assert not token_ids.plain_prompt and token_ids.prompt_tokens == 3
    assert parse_completion_request(b'{"model": "m", "prompt": ["one"]}').plain_prompt

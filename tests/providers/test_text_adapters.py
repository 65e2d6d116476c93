"""Text completion and embeddings adapters: Ollama translations (pure), then every adapter against the mock.

No database: the mock is a plain aiohttp app started in-process on a free port.
"""

from __future__ import annotations

import base64
import math
import struct
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gateway_platform.errors import GatewayError
from providers import http
from providers.adapters import (
    EMBEDDING_ADAPTERS,
    TEXT_COMPLETION_ADAPTERS,
    embedding_adapter_for,
    text_completion_adapter_for,
)
from providers.adapters.base import Deployment, ProviderConfig, StreamChunk, chunk_text
from providers.adapters.ollama_text import (
    TextStreamTranslator,
    build_embed_request,
    build_generate_request,
    embedding_texts,
    fit_dimensions,
    pack_base64,
    parse_embed_response,
    parse_generate_response,
    single_prompt,
)
from providers.adapters.openai import parse_chat_response, parse_embeddings_response, parse_stream_line
from providers.mock_upstream.replies import embedding_vector

UPSTREAM = {"openai": ("mock-gpt", "mock-embedding"), "ollama": ("mock-llama:latest", "mock-embed:latest")}


def make_deployment(base_url: str, kind: str, *, embeddings: bool = False) -> Deployment:
    provider = ProviderConfig(
        id=1,
        name=f"mock-{kind}",
        kind=kind,
        base_url=base_url + ("/v1" if kind == "openai" else ""),
        api_key=None,
        connect_timeout=2.0,
        read_timeout=5.0,
        total_timeout=10.0,
        max_connections=10,
    )
    return Deployment(
        model_id=1,
        name=f"public-{kind}",
        upstream_model=UPSTREAM[kind][1 if embeddings else 0],
        provider=provider,
        input_cost_per_million=Decimal(1),
        output_cost_per_million=Decimal(2),
        context_window=8192,
        max_output_tokens=None,
    )


OLLAMA = make_deployment("http://127.0.0.1:11434", "ollama")


def decode_base64(data: str) -> list[float]:
    """What the openai SDK does with ``encoding_format=base64``."""
    raw = base64.b64decode(data)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


# --------------------------------------------------------------------------- Ollama /api/generate (pure)


def test_generate_request_carries_prompt_suffix_and_options() -> None:
    body = {
        "model": "public",
        "prompt": "def add(a, b):",
        "suffix": "\nprint(add(1, 2))",
        "max_tokens": 32,
        "temperature": 0.2,
        "stop": "\n\n",
        "stream": True,
        "user": "someone",
    }
    payload = build_generate_request(OLLAMA, body, stream=True)
    assert payload == {
        "model": "mock-llama:latest",
        "prompt": "def add(a, b):",
        "suffix": "\nprint(add(1, 2))",
        "stream": True,
        "raw": False,
        "keep_alive": "5m",
        "options": {"temperature": 0.2, "stop": ["\n\n"], "num_predict": 32},
    }
    plain = build_generate_request(OLLAMA, {"prompt": ["only one"], "suffix": ""}, stream=False)
    assert plain["prompt"] == "only one" and "suffix" not in plain and "options" not in plain
    assert plain["stream"] is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": [[1, 2]]}, "prompt"),
        ({"prompt": "x", "n": 2}, "n"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "echo": True}, "echo"),
    ],
)
def test_generate_request_refuses_what_ollama_cannot_do(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as failed:
        build_generate_request(OLLAMA, body, stream=False)
    assert failed.value.status == 400 and failed.value.param == param


def test_single_prompt() -> None:
    assert single_prompt("x") == "x" and single_prompt(["y"]) == "y" and single_prompt("") == ""


def test_generate_response_becomes_a_text_completion() -> None:
    raw = orjson.dumps(
        {"model": "m", "response": "return a + b", "done": True, "done_reason": "length", "prompt_eval_count": 7}
        | {"eval_count": 4}
    )
    completion = parse_generate_response(raw, model="public", created=123, completion_id="cmpl-1")
    assert orjson.loads(completion.body) == {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 123,
        "model": "public",
        "choices": [{"text": "return a + b", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11},
    }
    assert completion.text == "return a + b" and completion.finish_reason == "length"
    assert completion.usage is not None and completion.usage.prompt_tokens == 7

    quiet = parse_generate_response(
        orjson.dumps({"response": "", "done": True}), model="p", created=1, completion_id="c"
    )
    assert quiet.usage is None and "usage" not in orjson.loads(quiet.body)
    with pytest.raises(TypeError):
        parse_generate_response(orjson.dumps({"response": 5}), model="p", created=1, completion_id="c")


def test_generate_stream_translation() -> None:
    translator = TextStreamTranslator(provider="local", model="public", created=9, completion_id="cmpl-9")
    chunks: list[StreamChunk] = []
    for line in (
        {"response": "Hello", "done": False},
        {"response": "", "done": False},
        {"response": " world", "done": False},
        {"response": "", "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2},
    ):
        chunks += translator.feed(line)
    assert translator.finished
    payloads = [orjson.loads(c.data or b"") for c in chunks]
    assert all(p["object"] == "text_completion" and p["id"] == "cmpl-9" and p["model"] == "public" for p in payloads)
    assert [p["choices"][0]["text"] for p in payloads] == ["Hello", " world", ""]
    assert [p["choices"][0]["finish_reason"] for p in payloads] == [None, None, "stop"]
    assert "".join(chunk_text(c) for c in chunks) == "Hello world"
    usage = translator.usage_chunk()
    assert usage is not None and usage.usage_only and usage.usage is not None
    assert orjson.loads(usage.data or b"") == {
        "id": "cmpl-9",
        "object": "text_completion",
        "created": 9,
        "model": "public",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def test_generate_stream_error_line_and_missing_counts() -> None:
    translator = TextStreamTranslator(provider="local", model="public", created=1, completion_id="c")
    with pytest.raises(GatewayError) as failed:
        translator.feed({"error": "model not found"})
    assert failed.value.status == 502 and "model not found" in failed.value.message
    quiet = TextStreamTranslator(provider="local", model="public", created=1, completion_id="c")
    quiet.feed({"response": "", "done": True, "done_reason": "stop"})
    assert quiet.finished and quiet.usage_chunk() is None


# --------------------------------------------------------------------------- Ollama /api/embed (pure)


def test_embed_request() -> None:
    body = {"model": "public", "input": "hello", "dimensions": 4, "encoding_format": "base64", "user": "u"}
    assert build_embed_request(OLLAMA, body) == {
        "model": "mock-llama:latest",
        "input": ["hello"],
        "keep_alive": "5m",
        "dimensions": 4,
    }
    assert build_embed_request(OLLAMA, {"input": ["a", "b"]})["input"] == ["a", "b"]


@pytest.mark.parametrize("value", [[1, 2, 3], [[1, 2], [3]], ["a", 1], [], 5, None])
def test_embed_input_must_be_text(value: object) -> None:
    with pytest.raises(GatewayError) as failed:
        embedding_texts(value)
    assert failed.value.status == 400 and failed.value.param == "input"


def test_pack_base64_is_little_endian_float32() -> None:
    assert base64.b64decode(pack_base64([1.0, -2.0, 0.5])) == struct.pack("<3f", 1.0, -2.0, 0.5)
    assert base64.b64decode(pack_base64([1.0])) == b"\x00\x00\x80\x3f"
    vector = embedding_vector("round trip", 16)
    assert decode_base64(pack_base64(vector)) == pytest.approx(vector, rel=1e-6)
    assert pack_base64([]) == ""


def test_fit_dimensions_shortens_and_renormalises() -> None:
    vector = [3.0, 4.0, 12.0]
    assert fit_dimensions(vector, None) is vector and fit_dimensions(vector, 3) is vector
    assert fit_dimensions(vector, 2) == pytest.approx([0.6, 0.8])
    assert fit_dimensions([0.0, 0.0, 1.0], 2) == [0.0, 0.0]
    # The same as asking for the shorter vector in the first place (the mock embeds this way).
    assert fit_dimensions(embedding_vector("x", 16), 8) == pytest.approx(embedding_vector("x", 8))


def test_embed_response_becomes_an_openai_list() -> None:
    raw = orjson.dumps({"model": "m", "embeddings": [[0.6, 0.8], [1.0, 0.0]], "prompt_eval_count": 5})
    floats = parse_embed_response(raw, model="public", encoding_format="float", dimensions=None)
    assert orjson.loads(floats.body) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.6, 0.8]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]},
        ],
        "model": "public",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
    assert floats.usage is not None and floats.usage.prompt_tokens == 5 and floats.usage.completion_tokens == 0
    packed = parse_embed_response(raw, model="public", encoding_format="base64", dimensions=1)
    data = orjson.loads(packed.body)["data"]
    assert [decode_base64(item["embedding"]) for item in data] == [[1.0], [1.0]]
    quiet = parse_embed_response(
        orjson.dumps({"embeddings": [[1.0]]}), model="p", encoding_format="float", dimensions=None
    )
    assert quiet.usage is None and "usage" not in orjson.loads(quiet.body)
    with pytest.raises(TypeError):
        parse_embed_response(orjson.dumps({"embeddings": "nope"}), model="p", encoding_format="float", dimensions=None)


# --------------------------------------------------------------------------- OpenAI pass-through parsing (pure)


def test_openai_parsers_read_legacy_text_completions() -> None:
    chunk = parse_stream_line(
        b'data: {"id":"c","object":"text_completion","choices":[{"text":"abc","index":0,"finish_reason":null}]}'
    )
    assert chunk is not None and chunk_text(chunk) == "abc" and not chunk.usage_only
    usage_only = parse_stream_line(
        b'data: {"id":"c","object":"text_completion","choices":[],'
        b'"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    )
    assert usage_only is not None and usage_only.usage_only and usage_only.usage is not None
    whole = parse_chat_response(b'{"choices":[{"text":"done","index":0,"finish_reason":"stop"}]}')
    assert whole.text == "done" and whole.finish_reason == "stop"
    chat = parse_stream_line(b'data: {"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}')
    assert chat is not None and chunk_text(chat) == ""


def test_openai_embeddings_usage_is_read_from_the_tail() -> None:
    body = (
        b'{"object":"list","data":[{"embedding":[0.1,0.2]}],"model":"usage",'
        b'"usage":{"prompt_tokens":4,"total_tokens":4}}'
    )
    usage = parse_embeddings_response(body)
    assert usage is not None and usage.prompt_tokens == 4 and usage.completion_tokens == 0
    nested = b'{"data":[],"usage":{"prompt_tokens":6,"total_tokens":6,"details":{"x":1}}}'
    assert (parse_embeddings_response(nested) or pytest.fail()).prompt_tokens == 6
    assert parse_embeddings_response(b'{"data":[],"model":"usage"}') is None
    with pytest.raises(ValueError):
        parse_embeddings_response(b"[1, 2]")
    with pytest.raises(ValueError):
        parse_embeddings_response(b"not json")


def test_registries_leave_anthropic_out() -> None:
    assert set(TEXT_COMPLETION_ADAPTERS) == {"openai", "ollama"}
    assert set(EMBEDDING_ADAPTERS) == {"openai", "ollama", "azure"}  # Gemini and Bedrock: chat only here
    for kind in ("anthropic", "gemini", "bedrock"):
        assert embedding_adapter_for(kind) is None and text_completion_adapter_for(kind) is None
    accepts = {kind: adapter.accepts_token_input for kind, adapter in EMBEDDING_ADAPTERS.items()}
    assert accepts == {"openai": True, "ollama": False, "azure": True}


# --------------------------------------------------------------------------- against the mock


async def collect(kind: str, deployment: Deployment, body: dict[str, Any]) -> list[StreamChunk]:
    adapter = TEXT_COMPLETION_ADAPTERS[kind]
    return [chunk async for chunk in adapter.stream_text(deployment, body)]


@pytest.mark.parametrize("kind", ["openai", "ollama"])
async def test_text_completion_whole_and_streamed(mock_url: str, kind: str) -> None:
    adapter, deployment = TEXT_COMPLETION_ADAPTERS[kind], make_deployment(mock_url, kind)
    completion = await adapter.complete_text(deployment, {"model": "public", "prompt": "Once upon a time"})
    body = orjson.loads(completion.body)
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == completion.text == "Mock reply to: Once upon a time"
    assert completion.usage is not None and completion.usage.completion_tokens == 7  # one token per word
    assert completion.usage.prompt_tokens == math.ceil(len("Once upon a time") / 4)

    chunks = await collect(kind, deployment, {"model": "public", "prompt": "Count", "stream": True})
    assert "".join(chunk_text(c) for c in chunks) == "Mock reply to: Count"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    last = chunks[-1]  # usage is always asked of the upstream; the flow hides it unless the client asked
    assert last.usage_only and last.usage is not None and last.usage.completion_tokens == 4


@pytest.mark.parametrize("kind", ["openai", "ollama"])
async def test_fill_in_the_middle_and_max_tokens(mock_url: str, kind: str) -> None:
    adapter, deployment = TEXT_COMPLETION_ADAPTERS[kind], make_deployment(mock_url, kind)
    body = {"model": "public", "prompt": "def add(a, b):\n    return", "suffix": "\nprint(add(1, 2))"}
    completion = await adapter.complete_text(deployment, body)
    assert completion.text.startswith("Mock fill between: ") and completion.text.endswith("print(add(1, 2))")
    short = await adapter.complete_text(deployment, {"model": "public", "prompt": "go", "max_tokens": 2})
    assert short.finish_reason == "length" and short.usage is not None and short.usage.completion_tokens == 2


@pytest.mark.parametrize("kind", ["openai", "ollama"])
async def test_text_stream_dropped_and_failed(mock_url: str, kind: str) -> None:
    deployment = make_deployment(mock_url, kind)
    received: list[StreamChunk] = []
    with pytest.raises(GatewayError) as failed:
        async for chunk in TEXT_COMPLETION_ADAPTERS[kind].stream_text(
            deployment, {"prompt": "one two three [[mock: drop_after=2]]"}
        ):
            received.append(chunk)
    assert failed.value.code == "upstream_disconnected" and failed.value.retryable
    assert "".join(chunk_text(c) for c in received) == "Mock reply"
    with pytest.raises(GatewayError) as failed:
        await TEXT_COMPLETION_ADAPTERS[kind].complete_text(deployment, {"prompt": "[[mock: status=503]]"})
    assert failed.value.status == 502 and failed.value.retryable


@pytest.mark.parametrize("kind", ["openai", "ollama"])
async def test_embeddings_float_and_base64(mock_url: str, kind: str) -> None:
    adapter, deployment = EMBEDDING_ADAPTERS[kind], make_deployment(mock_url, kind, embeddings=True)
    floats = await adapter.embed(
        deployment, {"model": "public", "input": ["alpha", "beta"], "encoding_format": "float"}
    )
    data = orjson.loads(floats.body)
    assert data["object"] == "list" and [d["index"] for d in data["data"]] == [0, 1]
    assert data["data"][0]["embedding"] == pytest.approx(embedding_vector("alpha", 8))
    assert floats.usage is not None and floats.usage.prompt_tokens == math.ceil(len("alphabeta") / 4)
    packed = await adapter.embed(deployment, {"input": "alpha", "encoding_format": "base64", "dimensions": 16})
    vector = decode_base64(orjson.loads(packed.body)["data"][0]["embedding"])
    assert vector == pytest.approx(embedding_vector("alpha", 16), rel=1e-6)


async def test_openai_embeddings_are_forwarded_byte_for_byte(mock_url: str) -> None:
    deployment = make_deployment(mock_url, "openai", embeddings=True)
    result = await EMBEDDING_ADAPTERS["openai"].embed(deployment, {"model": "public", "input": [[1, 2, 3]]})
    direct = await http.post_json(
        deployment.provider,
        f"{mock_url}/v1/embeddings",
        {"model": "mock-embedding", "input": [[1, 2, 3]]},
        {"Content-Type": "application/json"},
    )
    assert result.body == direct.body


async def test_ollama_embeddings_refuse_token_arrays(mock_url: str) -> None:
    with pytest.raises(GatewayError) as failed:
        await EMBEDDING_ADAPTERS["ollama"].embed(
            make_deployment(mock_url, "ollama", embeddings=True), {"input": [1, 2]}
        )
    assert failed.value.status == 400 and failed.value.param == "input"


def test_openai_stream_events_without_usage_or_finish_reason_are_relayed_unread() -> None:
    plain = parse_stream_line(
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"say \\"usage\\":1"},"finish_reason":null}],'
        b'"usage":null}'
    )
    assert plain is not None and plain.unread and plain.usage is None and plain.text == ""
    assert chunk_text(plain) == 'say "usage":1' and not plain.unread
    finished = parse_stream_line(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    assert finished is not None and not finished.unread and finished.finish_reason == "stop"
    spaced = parse_stream_line(b'data: {"choices": [{"delta": {"content": "x"}, "finish_reason": null}]}')
    assert spaced is not None and not spaced.unread and spaced.text == "x"  # other spellings are read
    with_usage = parse_stream_line(
        b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    )
    assert with_usage is not None and with_usage.usage_only and with_usage.usage is not None

"""``POST /v1/embeddings``: the official openai SDK against a real Daphne gateway, through to the mock upstream.

The mock embeds deterministically (a hash of the text), in both its OpenAI and
its Ollama format, so the two paths must give the same vectors.
"""

from __future__ import annotations

import math
from decimal import Decimal

import httpx2
import openai
import pytest

from gateway_platform.config.snapshot import Snapshot, TierInfo
from providers.adapters.base import Deployment, ProviderConfig
from providers.mock_upstream.replies import embedding_vector
from routing.resolver import Route
from serving.embeddings import (
    embeddings_route,
    parse_embeddings_request,
    without_implicit_fallback,
)
from tests.conftest import free_port
from tests.factories import make_key, make_model, make_provider, make_tier

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
MODELS = {"openai": "embed-cloud", "ollama": "embed-local"}


def tokens(*texts: str) -> int:
    """The mock's prompt token count."""
    return max(1, math.ceil(sum(len(t) for t in texts) / 4))


@pytest.fixture
def secret(mock_upstream_url: str) -> str:
    cloud = make_model(
        make_provider(f"{mock_upstream_url}/v1", name="mockai"),
        name="embed-cloud",
        upstream_model="mock-embedding",
        input_cost="2",
    )
    make_model(
        make_provider(mock_upstream_url, kind="ollama", name="mockollama"),
        name="embed-local",
        upstream_model="mock-embed:latest",
        input_cost="1",
    )
    make_model(
        make_provider(mock_upstream_url, kind="anthropic", name="mockclaude"),
        name="claude",
        upstream_model="mock-claude",
    )
    down = make_model(make_provider(f"http://127.0.0.1:{free_port()}/v1", name="nowhere"), name="embed-down")
    make_tier("vectors", [down, cloud])
    return make_key()[1]


@pytest.fixture
def client(gateway_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)


def post(gateway_url: str, secret: str, body: object) -> httpx2.Response:
    return httpx2.post(
        f"{gateway_url}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )


# --------------------------------------------------------------------------- through the gateway


@integration
@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_it_embeds_in_float_and_base64_with_usage_and_headers(client, drained_events, kind):
    model = MODELS[kind]
    texts = ["alpha", "beta gamma"]
    raw = client.embeddings.with_raw_response.create(model=model, input=texts)  # the SDK asks for base64
    packed = raw.parse()
    floats = client.embeddings.create(model=model, input=texts, encoding_format="float")
    for result in (packed, floats):
        assert [d.index for d in result.data] == [0, 1]
        assert result.usage.prompt_tokens == tokens(*texts)
    for text, a, b in zip(texts, packed.data, floats.data, strict=True):
        assert len(a.embedding) == len(b.embedding) == 8
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6)  # float32 on the wire vs JSON floats
        assert b.embedding == pytest.approx(embedding_vector(text, 8))
    for name in CONTRACT_HEADERS:
        assert raw.headers.get(name), name
    assert raw.headers["x-gateway-model"] == model and raw.headers["x-gateway-tier"] == "none"
    price = 2 if kind == "openai" else 1
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(tokens(*texts) * price / 1e6)

    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.endpoint == "embeddings" and event.status_code == 200
    assert event.model == model and event.prompt_tokens == tokens(*texts) and event.completion_tokens == 0
    assert not event.tokens_estimated and not event.stream
    assert float(event.cost_usd) == pytest.approx(tokens(*texts) * price / 1e6)


@integration
@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_dimensions_are_honoured_and_both_paths_agree(client, kind):
    result = client.embeddings.create(model=MODELS[kind], input="shorter please", dimensions=5)
    assert result.data[0].embedding == pytest.approx(embedding_vector("shorter please", 5), rel=1e-6)
    assert math.isclose(sum(v * v for v in result.data[0].embedding), 1.0, rel_tol=1e-5)


@integration
def test_ollama_answers_in_openai_shape(gateway_url, secret):
    response = post(gateway_url, secret, {"model": "embed-local", "input": "hi", "encoding_format": "float"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["model"] == "embed-local"
    assert body["data"] == [{"object": "embedding", "index": 0, "embedding": pytest.approx(embedding_vector("hi"))}]
    assert body["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


@integration
def test_openai_answers_are_forwarded_byte_for_byte_and_token_arrays_pass(gateway_url, mock_upstream_url, secret):
    body = {"model": "embed-cloud", "input": [[1, 2, 3], [4, 5]], "encoding_format": "float"}
    through = post(gateway_url, secret, body)
    direct = httpx2.post(f"{mock_upstream_url}/v1/embeddings", json={**body, "model": "mock-embedding"}, timeout=10)
    assert through.status_code == 200 and through.content == direct.content


@integration
def test_a_tier_fails_over_to_the_next_deployment(client):
    raw = client.embeddings.with_raw_response.create(model="vectors", input="x", encoding_format="float")
    assert raw.headers["x-gateway-tier"] == "vectors" and raw.headers["x-gateway-model"] == "embed-cloud"
    assert int(raw.headers["x-gateway-fallback"]) >= 1  # failed attempts before the answer
    assert raw.parse().data[0].embedding == pytest.approx(embedding_vector("x"))


@integration
def test_usage_is_estimated_when_the_upstream_reports_none(client, drained_events):
    text = "count me [[mock: no_usage=1]]"
    raw = client.embeddings.with_raw_response.create(model="embed-local", input=text, encoding_format="float")
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.tokens_estimated and event.prompt_tokens == math.ceil(len(text) / 4)


@integration
@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "embed-cloud"}, "input", None),
        ({"model": "embed-cloud", "input": []}, "input", None),
        ({"model": "embed-cloud", "input": 5}, "input", None),
        ({"model": "embed-cloud", "input": ""}, "input", None),
        ({"model": "embed-cloud", "input": ["a", ""]}, "input", None),
        ({"model": "embed-cloud", "input": ["a", 1]}, "input", None),
        ({"model": "embed-cloud", "input": [[]]}, "input", None),
        ({"model": "embed-cloud", "input": {"text": "a"}}, "input", None),
        ({"model": "embed-cloud", "input": "a", "dimensions": 0}, "dimensions", None),
        ({"model": "embed-cloud", "input": "a", "dimensions": "8"}, "dimensions", None),
        ({"model": "embed-cloud", "input": "a", "encoding_format": "hex"}, "encoding_format", None),
        ({"input": "a"}, "model", None),
        ({"model": "no-such-model", "input": "a"}, "model", "model_not_found"),
        ({"model": "claude", "input": "a"}, "model", "model_not_supported"),
        ({"model": "embed-local", "input": [1, 2, 3]}, "input", None),
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
        client.embeddings.create(model="claude", input="a")
    assert "does not support embeddings" in failed.value.message


@integration
def test_a_missing_key_is_a_401(gateway_url, secret):
    response = httpx2.post(f"{gateway_url}/v1/embeddings", json={"model": "embed-cloud", "input": "a"}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


# --------------------------------------------------------------------------- routing (pure)


def _deployment(name: str, kind: str) -> Deployment:
    provider = ProviderConfig(
        id=1,
        name=f"p-{kind}",
        kind=kind,
        base_url="http://x",
        api_key=None,
        connect_timeout=1,
        read_timeout=1,
        total_timeout=1,
        max_connections=1,
    )
    return Deployment(
        model_id=1,
        name=name,
        upstream_model=name,
        provider=provider,
        input_cost_per_million=Decimal(0),
        output_cost_per_million=Decimal(0),
        context_window=1,
        max_output_tokens=None,
    )


CLOUD, LOCAL, CLAUDE = (
    _deployment("cloud", "openai"),
    _deployment("local", "ollama"),
    _deployment("claude", "anthropic"),
)


def _snapshot(tier: tuple[Deployment, ...]) -> Snapshot:
    tiers = {"t": TierInfo(id=1, name="t", description="", capabilities=(), deployments=tier)}
    return Snapshot(version=1, models={}, tiers=tiers, providers={}, local_fallback=LOCAL)


def test_the_local_fallback_is_not_appended_to_embedding_tiers():
    appended = Route(requested="t", tier="t", deployments=(CLOUD, LOCAL))
    assert without_implicit_fallback(_snapshot((CLOUD,)), appended).deployments == (CLOUD,)
    assert without_implicit_fallback(_snapshot((CLOUD, LOCAL)), appended).deployments == (CLOUD, LOCAL)
    explicit = Route(requested="local:local", tier=None, deployments=(LOCAL,))
    assert without_implicit_fallback(_snapshot((CLOUD,)), explicit) is explicit


def test_routes_keep_only_deployments_that_can_embed_the_input():
    route = Route(requested="t", tier=None, deployments=(CLAUDE, LOCAL, CLOUD))
    snapshot = _snapshot(())
    text = parse_embeddings_request(b'{"model": "t", "input": "a"}')
    assert embeddings_route(snapshot, route, text).deployments == (LOCAL, CLOUD)
    token_ids = parse_embeddings_request(b'{"model": "t", "input": [1, 2]}')
    assert token_ids.token_input and token_ids.prompt_tokens == 2
    assert embeddings_route(snapshot, route, token_ids).deployments == (CLOUD,)


def test_parsing_drops_gateway_fields_and_estimates_tokens():
    request = parse_embeddings_request(
        b'{"model": " m ", "input": ["abcd", "abcdefgh"], "provider": "p", "skill": "s"}'
    )
    assert request.model == "m" and request.provider == "p" and not request.token_input
    assert request.prompt_tokens == 3 and request.body == {"model": " m ", "input": ["abcd", "abcdefgh"]}

"""Request shapes a client can send to /v1/ never cause a 500, whatever upstream wire format serves them.

Targeted cases for bugs found (``tool_calls`` that is not an array crashed the
Anthropic and Ollama translations), then a Hypothesis pass: JSON bodies built
from each endpoint's own field names with values of every JSON type, sent over
HTTP to a real gateway whose models speak the OpenAI, Anthropic and Ollama wire
formats to the mock upstream. Derandomised, so a run is reproducible.
"""

from __future__ import annotations

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MOCK_PROVIDER_KEY_ENV
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = {"openai": "/v1", "anthropic": "", "ollama": ""}
NOT_A_LIST_OF_OBJECTS = [5, "abc", {"a": 1}, [1], [None], True]


@pytest.fixture
def hostile_world(mock_upstream_url: str) -> str:
    """Three models, one per upstream wire format, and a key that may use them."""
    for kind, suffix in KINDS.items():
        provider = make_provider(
            f"{mock_upstream_url}{suffix}", kind=kind, name=f"hostile-{kind}", api_key_env=MOCK_PROVIDER_KEY_ENV
        )
        make_model(provider, name=f"hostile-{kind}")
    return make_key()[1]


def post(gateway_url: str, secret: str, path: str, body: object) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {secret}", "x-api-key": secret, "X-Gateway-Cache": "no-store"}
    return httpx2.post(f"{gateway_url}{path}", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize("kind", KINDS)
def test_tool_calls_that_are_not_a_list_of_objects_are_a_400(gateway_url, hostile_world, kind):
    for calls in NOT_A_LIST_OF_OBJECTS:
        body = {
            "model": f"hostile-{kind}",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                {"role": "user", "content": "again"},
            ],
        }
        response = post(gateway_url, hostile_world, "/v1/chat/completions", body)
        assert response.status_code == 400, (calls, response.text)
        assert response.json()["error"]["param"] == "messages[1].tool_calls"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
MODELS = st.sampled_from([f"hostile-{kind}" for kind in KINDS])
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer"])},
    optional={
        "content": JSON | st.text(max_size=30),
        "tool_calls": JSON,
        "tool_call_id": JSON,
        "name": JSON,
    },
)
CHAT_FIELDS = {
    "tools": JSON,
    "tool_choice": JSON,
    "stream": st.booleans(),
    "max_tokens": JSON,
    "max_completion_tokens": JSON,
    "temperature": JSON,
    "top_p": JSON,
    "n": JSON,
    "stop": JSON,
    "response_format": JSON,
    "stream_options": JSON,
    "parallel_tool_calls": JSON,
    "user": JSON,
    "seed": JSON,
}
ENDPOINTS = {
    "/v1/chat/completions": st.fixed_dictionaries(
        {"model": MODELS | JSON, "messages": st.lists(MESSAGE, min_size=1, max_size=3) | JSON},
        optional=CHAT_FIELDS,
    ),
    "/v1/messages": st.fixed_dictionaries(
        {"model": MODELS, "max_tokens": JSON | st.integers(1, 50), "messages": st.lists(MESSAGE, max_size=3) | JSON},
        optional={"system": JSON, "tools": JSON, "tool_choice": JSON, "stream": st.booleans(), "metadata": JSON},
    ),
    "/v1/completions": st.fixed_dictionaries(
        {"model": MODELS, "prompt": JSON | st.text(max_size=30)},
        optional={"suffix": JSON, "max_tokens": JSON, "stream": st.booleans(), "best_of": JSON, "n": JSON},
    ),
    "/v1/embeddings": st.fixed_dictionaries({"model": MODELS | JSON, "input": JSON}),
    "/v1/responses": st.fixed_dictionaries(
        {"model": MODELS, "input": JSON | st.text(max_size=30)},
        optional={"instructions": JSON, "tools": JSON, "stream": st.booleans(), "max_output_tokens": JSON},
    ),
}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_generated_bodies_never_get_a_500(gateway_url, hostile_world, path):
    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=ENDPOINTS[path])
    def check(body: dict[str, object]) -> None:
        response = post(gateway_url, hostile_world, path, body)
        assert response.status_code < 500 or response.status_code in (502, 503, 504), (body, response.text)

    check()

"""``GET /v1/responses/{id}/input_items`` with the openai SDK: stored inputs, paginated, tenant-scoped."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest

from tests.conftest import start_gateway, stop_process
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def gateway(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    proc, url = start_gateway()
    yield url
    stop_process(proc)


@pytest.fixture
def secret(gateway: str, mock_upstream_url: str) -> str:
    provider = make_provider(f"{mock_upstream_url}/v1", kind="openai", name="mockai")
    make_tier("code_gen", [make_model(provider, name="mock-small", upstream_model="mock-small-1")])
    return make_key()[1]


def sdk(gateway: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=secret, max_retries=0)


def conversation(client: openai.OpenAI) -> str:
    """Two stored turns; the id of the second."""
    first = client.responses.create(
        model="code_gen",
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "first question"}]},
        ],
    )
    second = client.responses.create(model="code_gen", previous_response_id=first.id, input="second question")
    return second.id


def test_it_lists_everything_that_went_into_a_response_newest_first(gateway: str, secret: str) -> None:
    client = sdk(gateway, secret)
    response_id = conversation(client)
    listed = client.responses.input_items.list(response_id)
    items = [item.model_dump() for item in listed.data]
    # Newest first: this turn's input, the first answer, then the first turn's input.
    assert [(i["type"], i["role"]) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "developer"),
    ]
    assert [(p["type"], p["text"]) for p in items[0]["content"]] == [("input_text", "second question")]
    assert items[1]["content"][0]["text"] == "Mock reply to: first question"
    assert all(i["id"] and i["status"] == "completed" for i in items)
    assert not listed.has_more and listed.first_id == items[0]["id"] and listed.last_id == items[-1]["id"]


def test_pages_follow_the_after_cursor_in_either_order(gateway: str, secret: str) -> None:
    client = sdk(gateway, secret)
    response_id = conversation(client)
    everything = [i.id for i in client.responses.input_items.list(response_id, order="asc")]
    assert len(everything) == 4
    first = client.responses.input_items.list(response_id, order="asc", limit=3)
    assert [i.id for i in first.data] == everything[:3] and first.has_more
    paged = [i.id for i in client.responses.input_items.list(response_id, order="asc", limit=1)]  # auto-paginates
    assert paged == everything
    rest = client.responses.input_items.list(response_id, order="desc", after=everything[-1], limit=2)
    assert [i.id for i in rest.data] == everything[::-1][1:3] and rest.has_more
    # Ids are stable: the same listing again names the same items.
    assert [i.id for i in client.responses.input_items.list(response_id, order="asc")] == everything


def test_another_tenants_or_an_unknown_response_is_a_404(gateway: str, secret: str) -> None:
    response_id = conversation(sdk(gateway, secret))
    stranger = sdk(gateway, make_key()[1])
    for target in (response_id, "resp_doesnotexist"):
        with pytest.raises(openai.NotFoundError) as caught:
            stranger.responses.input_items.list(target)
        assert caught.value.body["code"] == "response_not_found"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
        ("after=msg_nope", "after"),
    ],
)
def test_bad_parameters_are_a_400_in_the_openai_shape(gateway: str, secret: str, query: str, param: str) -> None:
    response_id = conversation(sdk(gateway, secret))
    answer = httpx2.get(
        f"{gateway}/v1/responses/{response_id}/input_items?{query}",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param and answer.json()["error"]["type"] == "invalid_request_error"


def test_other_methods_and_missing_keys_are_refused(gateway: str, secret: str) -> None:
    url = f"{gateway}/v1/responses/resp_x/input_items"
    assert httpx2.post(url, headers={"Authorization": f"Bearer {secret}"}, timeout=30).status_code == 405
    assert httpx2.get(url, timeout=30).status_code == 401

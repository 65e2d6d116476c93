"""Rate limits through the real gateway: 64 concurrent requests over two processes sharing Redis."""

from __future__ import annotations

import pytest

from billing.models import KeyModelLimit
from providers.adapters.tokens import estimate_prompt_tokens
from tests.billing.conftest import burst
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)

# The mock holds each answer, so every request of the burst is admitted (or not) before any settles.
BODY = {"model": "mock-small", "messages": [{"role": "user", "content": "hi [[mock: delay=0.2]]"}], "max_tokens": 3}
# Token limits count what settled answers used too: each admitted answer is held for 5 s, a window
# far wider than it takes a busy 2-core machine to admit or refuse all 64, so none settles before
# the last is decided and the admitted count is exact.
HELD = {**BODY, "messages": [{"role": "user", "content": "hi [[mock: delay=5]]"}]}


@pytest.fixture
def urls(mock_upstream_url: str, gateway_url: str, second_gateway_url: str) -> list[str]:
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    return [gateway_url, second_gateway_url]


def refused_by_rate_limit(answers: list) -> list:
    refused = [a for a in answers if a.status != 200]
    assert all(a.status == 429 for a in refused)
    assert all(a.body["error"]["code"] == "rate_limit_exceeded" for a in refused)
    assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
    return refused


def test_a_key_rpm_limit_holds_across_processes(urls):
    _, secret = make_key(rpm_limit=10)
    answers = burst(urls, secret, BODY)
    assert sum(a.status == 200 for a in answers) == 10
    assert len(refused_by_rate_limit(answers)) == 54
    assert all("x-ratelimit-remaining-requests" in a.headers for a in answers)
    assert min(int(a.headers["x-ratelimit-remaining-requests"]) for a in answers) == 0


def test_a_key_tpm_limit_holds_across_processes(urls):
    prompt = estimate_prompt_tokens(HELD)
    _, secret = make_key(tpm_limit=prompt * 8)
    answers = burst(urls, secret, HELD)
    assert sum(a.status == 200 for a in answers) == 8
    assert len(refused_by_rate_limit(answers)) == 56
    assert "API key" in next(a for a in answers if a.status == 429).body["error"]["message"]


def test_a_tenant_rpm_limit_is_shared_by_all_its_keys(urls):
    first, secret = make_key()
    _, other_secret = make_key(team=first.team)
    tenant = first.team.tenant
    tenant.rpm_limit = 6
    tenant.save()
    answers = burst(urls, secret, BODY, count=32) + burst(urls, other_secret, BODY, count=32)
    assert sum(a.status == 200 for a in answers) == 6
    message = next(a for a in answers if a.status == 429).body["error"]["message"]
    assert f"tenant '{tenant.slug}' (6 requests per minute)" in message


def test_a_team_tpm_limit_is_shared_by_all_its_keys(urls):
    key, secret = make_key()
    team = key.team
    team.tpm_limit = estimate_prompt_tokens(HELD) * 5
    team.save()
    answers = burst(urls, secret, HELD)
    assert sum(a.status == 200 for a in answers) == 5
    assert "team '" in next(a for a in answers if a.status == 429).body["error"]["message"]


def test_a_per_model_limit_on_a_key(urls):
    key, secret = make_key()
    KeyModelLimit.objects.create(api_key=key, model="mock-small", rpm_limit=3)
    answers = burst(urls, secret, BODY)
    assert sum(a.status == 200 for a in answers) == 3
    assert "on model 'mock-small'" in next(a for a in answers if a.status == 429).body["error"]["message"]

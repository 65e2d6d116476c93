"""``best_of`` completions are generated and billed upstream: admission reserves all of them."""

from __future__ import annotations

import httpx2
import pytest

from tests.factories import make_budget, make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


def test_best_of_counts_against_the_budget(gateway_url, mock_upstream_url):
    provider = make_provider(f"{mock_upstream_url}/v1", name="bestof-prov")
    make_model(provider, name="bestof-model", input_cost="1.0", output_cost="2.0")
    key, secret = make_key()
    make_budget("0.005", api_key=key)  # one 1,000-token completion fits (0.002 USD), five do not

    def complete(**extra: object) -> httpx2.Response:
        body = {"model": "bestof-model", "prompt": "Once", "max_tokens": 1000, **extra}
        headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}
        return httpx2.post(f"{gateway_url}/v1/completions", json=body, headers=headers, timeout=30)

    refused = complete(best_of=5)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert complete().status_code == 200

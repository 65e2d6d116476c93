"""Unit tests of cost math and token estimates (pure)."""

from __future__ import annotations

from decimal import Decimal

from billing.costs import cost_usd, estimate_prompt_tokens, estimate_tokens, message_text
from providers.adapters.base import Deployment, ProviderConfig, Usage

PROVIDER = ProviderConfig(1, "p", "openai", "http://x/v1", None, 1, 1, 1, 1)


def deployment(input_price: str, output_price: str) -> Deployment:
    return Deployment(1, "m", "m", PROVIDER, Decimal(input_price), Decimal(output_price), 1000, None)


def test_cost_is_exact_to_the_fraction_of_a_cent():
    usage = Usage(prompt_tokens=1234, completion_tokens=567)
    assert cost_usd(deployment("3", "15"), usage) == Decimal("0.012207")


def test_free_models_cost_nothing():
    assert cost_usd(deployment("0", "0"), Usage(prompt_tokens=10**6, completion_tokens=10**6)) == 0


def test_estimates_round_up():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcde") == 2


def test_message_text_reads_strings_and_text_parts():
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": None},
    ]
    assert message_text(messages) == "sys\npart"
    assert estimate_prompt_tokens({"messages": messages}) == estimate_tokens("sys\npart") + 12

"""Unit tests of cost math and token estimates (pure)."""

from __future__ import annotations

from decimal import Decimal

from billing.costs import cost_usd, prompt_cache_saved_usd, prompt_split
from providers.adapters.base import Deployment, ProviderConfig, Usage
from providers.adapters.tokens import estimate_prompt_tokens, estimate_tokens, message_text

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


# -- provider prompt caching -------------------------------------------------------------------------


def cached_deployment(input_price: str, read: str | None, write: str | None) -> Deployment:
    return Deployment(
        1,
        "m",
        "m",
        PROVIDER,
        Decimal(input_price),
        Decimal("15"),
        1000,
        None,
        cache_read_cost_per_million=None if read is None else Decimal(read),
        cache_write_cost_per_million=None if write is None else Decimal(write),
    )


def test_cache_reads_and_writes_are_charged_at_their_own_prices():
    # Anthropic Sonnet: input 3, cache read 0.30, cache write 3.75 per million.
    usage = Usage(prompt_tokens=10_000, completion_tokens=100, cached_prompt_tokens=8_000, cache_write_tokens=1_500)
    sonnet = cached_deployment("3", "0.30", "3.75")
    expected = (500 * Decimal(3) + 8_000 * Decimal("0.30") + 1_500 * Decimal("3.75") + 100 * Decimal(15)) / 10**6
    assert cost_usd(sonnet, usage) == expected == Decimal("0.0110250")
    saved = prompt_cache_saved_usd(sonnet, usage)
    assert saved == (8_000 * Decimal("2.70") - 1_500 * Decimal("0.75")) / 10**6
    full = cost_usd(cached_deployment("3", None, None), usage)
    assert full - cost_usd(sonnet, usage) == saved


def test_without_cache_prices_cached_tokens_cost_the_input_price():
    usage = Usage(prompt_tokens=1234, completion_tokens=567, cached_prompt_tokens=1000, cache_write_tokens=200)
    assert cost_usd(cached_deployment("3", None, None), usage) == Decimal("0.012207")
    assert prompt_cache_saved_usd(cached_deployment("3", None, None), usage) == 0


def test_a_cache_written_and_never_read_costs_more_than_none():
    usage = Usage(prompt_tokens=4_000, completion_tokens=0, cache_write_tokens=4_000)
    assert prompt_cache_saved_usd(cached_deployment("3", "0.30", "3.75"), usage) == Decimal("-0.003")


def test_over_reported_cache_counts_are_clamped_to_the_prompt():
    usage = Usage(prompt_tokens=100, completion_tokens=0, cached_prompt_tokens=90, cache_write_tokens=50)
    assert prompt_split(usage) == (0, 90, 10)
    assert prompt_split(Usage(prompt_tokens=10, cached_prompt_tokens=-5)) == (10, 0, 0)

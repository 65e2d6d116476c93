"""Cost math (pure functions). Token estimates are ``providers.adapters.tokens``."""

from __future__ import annotations

from decimal import Decimal

from providers.adapters.base import Deployment, Usage

MILLION = Decimal(1_000_000)


def prompt_split(usage: Usage) -> tuple[int, int, int]:
    """``(fresh, cache_read, cache_write)`` prompt tokens; counts a provider over-reports are clamped."""
    prompt = max(usage.prompt_tokens, 0)
    read = min(max(usage.cached_prompt_tokens, 0), prompt)
    write = min(max(usage.cache_write_tokens, 0), prompt - read)
    return prompt - read - write, read, write


def cache_prices(deployment: Deployment) -> tuple[Decimal, Decimal]:
    """Per-million ``(read, write)`` prices of the deployment's prompt cache (the input price when unset)."""
    read = deployment.cache_read_cost_per_million
    write = deployment.cache_write_cost_per_million
    base = deployment.input_cost_per_million
    return (base if read is None else read), (base if write is None else write)


def cost_usd(deployment: Deployment, usage: Usage) -> Decimal:
    """USD for ``usage`` at the deployment's per-million prices, prompt-cache reads and writes at theirs."""
    fresh, read, write = prompt_split(usage)
    read_price, write_price = cache_prices(deployment)
    return (
        Decimal(fresh) * deployment.input_cost_per_million
        + Decimal(read) * read_price
        + Decimal(write) * write_price
        + Decimal(usage.completion_tokens) * deployment.output_cost_per_million
    ) / MILLION


def prompt_cache_saved_usd(deployment: Deployment, usage: Usage) -> Decimal:
    """What the provider's prompt cache saved on ``usage`` versus every prompt token at the input price.

    Negative when writes (Anthropic charges 1.25x) outweighed reads: a cache
    written and never read again costs more than no cache.
    """
    _, read, write = prompt_split(usage)
    read_price, write_price = cache_prices(deployment)
    base = deployment.input_cost_per_million
    return (Decimal(read) * (base - read_price) - Decimal(write) * (write_price - base)) / MILLION

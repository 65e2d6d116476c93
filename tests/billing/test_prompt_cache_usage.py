"""Prompt-cache token counts as each provider reports them, read into ``Usage`` (pure)."""

from __future__ import annotations

from providers.adapters.anthropic_translate import AnthropicUsage
from providers.adapters.openai import parse_usage


def test_openai_cached_tokens_are_cache_reads() -> None:
    usage = parse_usage(
        {"prompt_tokens": 2000, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 1536}}
    )
    assert usage is not None and (usage.cached_prompt_tokens, usage.cache_write_tokens) == (1536, 0)


def test_deepseek_cache_hit_tokens_are_cache_reads() -> None:
    data = {
        "prompt_tokens": 900,
        "completion_tokens": 5,
        "prompt_cache_hit_tokens": 640,
        "prompt_cache_miss_tokens": 260,
    }
    usage = parse_usage(data)
    assert usage is not None and usage.cached_prompt_tokens == 640


def test_an_anthropic_upstream_in_openai_shape_keeps_its_cache_writes() -> None:
    anthropic = AnthropicUsage(
        input_tokens=10, output_tokens=5, cache_creation_input_tokens=100, cache_read_input_tokens=1000
    )
    direct = anthropic.to_usage()
    assert (direct.prompt_tokens, direct.cached_prompt_tokens, direct.cache_write_tokens) == (1110, 1000, 100)
    relayed = parse_usage(anthropic.to_openai())
    assert relayed == direct


def test_malformed_cache_counts_are_zero() -> None:
    data = {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": "7"}}
    usage = parse_usage({**data, "cache_creation_input_tokens": True})
    assert usage is not None and (usage.cached_prompt_tokens, usage.cache_write_tokens) == (0, 0)

"""The mock upstream simulates providers' prompt caches per deployment (model), as the replay benchmark needs."""

from __future__ import annotations

import uuid

import anthropic
import openai

LONG = "Repository context: " + "the billing module computes invoices from orders. " * 120  # ~1,500 tokens


def test_openai_style_automatic_prefix_caching(mock_upstream_url: str) -> None:
    client = openai.OpenAI(base_url=f"{mock_upstream_url}/v1", api_key="k", max_retries=0)
    key = uuid.uuid4().hex
    history = [{"role": "system", "content": LONG + key}, {"role": "user", "content": "first question"}]
    first = client.chat.completions.create(model="mock-gpt", messages=history, prompt_cache_key=key)
    assert first.usage.prompt_tokens_details is None or not first.usage.prompt_tokens_details.cached_tokens
    history += [{"role": "assistant", "content": "answer"}, {"role": "user", "content": "second question"}]
    second = client.chat.completions.create(model="mock-gpt", messages=history, prompt_cache_key=key)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and cached < second.usage.prompt_tokens
    # Another deployment (model) or another session key starts cold.
    other_model = client.chat.completions.create(model="mock-gpt-mini", messages=history, prompt_cache_key=key)
    assert other_model.usage.prompt_tokens_details is None
    other_key = client.chat.completions.create(model="mock-gpt", messages=history, prompt_cache_key=key + "x")
    assert other_key.usage.prompt_tokens_details is None


def test_anthropic_reads_the_longest_prefix_cached_at_any_breakpoint(mock_upstream_url: str) -> None:
    client = anthropic.Anthropic(base_url=mock_upstream_url, api_key="k", max_retries=0)
    system = [{"type": "text", "text": LONG + uuid.uuid4().hex, "cache_control": {"type": "ephemeral"}}]
    turn1 = [{"role": "user", "content": [{"type": "text", "text": "q1", "cache_control": {"type": "ephemeral"}}]}]
    first = client.messages.create(model="mock-claude", max_tokens=32, system=system, messages=turn1)
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens > 0
    turn2 = [
        *turn1,
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": [{"type": "text", "text": "q2 " * 50, "cache_control": {"type": "ephemeral"}}]},
    ]
    second = client.messages.create(model="mock-claude", max_tokens=32, system=system, messages=turn2)
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens > 0  # the new turn is written for the next one

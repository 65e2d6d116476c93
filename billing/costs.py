"""Cost math and token estimates (pure functions)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson

from providers.adapters.base import Deployment, Usage

MILLION = Decimal(1_000_000)
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text and code


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


def tokens_for_chars(chars: int) -> int:
    """Tokens in ``chars`` characters of text, without a tokenizer (nothing is downloaded at run time)."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` (see ``tokens_for_chars``)."""
    return tokens_for_chars(len(text))


def message_text(messages: list[Any]) -> str:
    """All text in a list of chat messages (string content and text parts)."""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(parts)


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a chat request: message text plus a small per-message overhead."""
    messages = body.get("messages") or []
    return estimate_tokens(message_text(messages)) + 4 * len(messages)


PROMPT_BOUND_OVERHEAD = 64  # tokens a provider may add around the request (role markers, reply priming)


def prompt_token_bound(body: dict[str, Any]) -> int:
    """An upper bound on the prompt tokens of a request body, for budget reservations.

    Byte-level BPE tokenizers never produce more tokens than the UTF-8 bytes
    they encode, and the body's JSON holds every byte of text (messages,
    tools, prompt, input) plus structure, which covers per-message markers. A
    guarantee rather than an estimate: hard budget limits rely on it (it
    over-reserves ~4x for English text; base64 images over-reserve more).
    """
    return len(orjson.dumps(body)) + PROMPT_BOUND_OVERHEAD

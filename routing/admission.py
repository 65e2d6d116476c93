"""Admission control before a request goes upstream: per-key RPM and TPM limits."""

from __future__ import annotations

from django.conf import settings

from billing import ratelimit
from gateway_platform.errors import rate_limited
from routing.exchange import Exchange
from routing.snapshot import KeyInfo


def _limits(key: KeyInfo) -> tuple[int, int]:
    return (key.rpm_limit or settings.GATEWAY["DEFAULT_RPM"], key.tpm_limit or settings.GATEWAY["DEFAULT_TPM"])


async def admit(exchange: Exchange, key: KeyInfo, prompt_tokens: int) -> None:
    """Charge one request and its prompt tokens, or raise 429 with ``Retry-After``."""
    rpm, tpm = _limits(key)
    decision = await ratelimit.check(
        [
            ratelimit.Limit(f"key:{key.id}:rpm", rpm, 1),
            ratelimit.Limit(f"key:{key.id}:tpm", tpm, prompt_tokens),
        ]
    )
    remaining = decision.remaining if decision.allowed else (0, 0)
    exchange.rate_headers = {
        "x-ratelimit-limit-requests": str(rpm),
        "x-ratelimit-remaining-requests": str(remaining[0]),
        "x-ratelimit-limit-tokens": str(tpm),
        "x-ratelimit-remaining-tokens": str(remaining[1]),
    }
    if not decision.allowed:
        raise rate_limited(
            f"Rate limit reached for API key '{key.name}' ({rpm} requests or {tpm} tokens per minute). "
            f"Try again in {decision.retry_after} s.",
            retry_after=decision.retry_after,
        )


async def settle(key: KeyInfo, completion_tokens: int) -> None:
    """Count the completion's tokens against the key's TPM window once they are known."""
    await ratelimit.charge(f"key:{key.id}:tpm", completion_tokens)

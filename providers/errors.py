"""Upstream failures, mapped to the status the client sees and whether to retry elsewhere."""

from __future__ import annotations

import re

from gateway_platform.errors import GatewayError

# What an upstream error text may say about the platform's own provider account, never the client's
# business: organisation/project/account ids, key fragments, e-mail addresses, AWS account ids and ARNs,
# Azure subscription GUIDs. Replaced before the text reaches a client; status and type are kept.
_ACCOUNT_DETAILS = [
    (re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*.]{4,}"), "[key]"),
    (re.compile(r"\b(?:org|proj|acct|user|req)[-_][A-Za-z0-9]{6,}\b"), "[id]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"arn:aws[\w-]*:[^\s\"',]+"), "[arn]"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "[id]"),
    (re.compile(r"\b\d{12}\b"), "[account]"),
]
MESSAGE_MAX = 500


def sanitised(message: str) -> str:
    """An upstream error text fit for the client: account details replaced, length bounded."""
    for pattern, replacement in _ACCOUNT_DETAILS:
        message = pattern.sub(replacement, message)
    return message if len(message) <= MESSAGE_MAX else message[: MESSAGE_MAX - 1] + "…"


def upstream_unreachable(provider: str, detail: str) -> GatewayError:
    return GatewayError(
        f"Provider '{provider}' is unreachable: {detail}",
        status=502,
        type="api_error",
        code="upstream_unreachable",
        retryable=True,
    )


def upstream_timeout(provider: str) -> GatewayError:
    return GatewayError(
        f"Provider '{provider}' did not answer in time.",
        status=504,
        type="api_error",
        code="upstream_timeout",
        retryable=True,
    )


def upstream_dropped(provider: str) -> GatewayError:
    return GatewayError(
        f"Provider '{provider}' closed the connection before the answer was complete.",
        status=502,
        type="api_error",
        code="upstream_disconnected",
        retryable=True,
    )


def upstream_status(provider: str, status: int, message: str, retry_after: str | None = None) -> GatewayError:
    """Map an upstream HTTP error status to ours.

    4xx other than auth and rate limits are the client's request: passed through,
    not retried. Auth failures are our configuration (502). 429 and 5xx may
    succeed on another deployment. The upstream's text is ``sanitised``.
    """
    message = sanitised(message)
    if status == 429:
        headers = {"Retry-After": retry_after} if retry_after else {}
        return GatewayError(
            f"Provider '{provider}' is rate limiting: {message}",
            status=429,
            type="rate_limit_error",
            code="upstream_rate_limited",
            retryable=True,
            headers=headers,
        )
    if status in (401, 403):
        return GatewayError(
            f"Provider '{provider}' rejected the gateway's credentials.",
            status=502,
            type="api_error",
            code="upstream_auth_failed",
            retryable=True,
        )
    if 400 <= status < 500:
        return GatewayError(f"Provider '{provider}' rejected the request: {message}", status=status)
    return GatewayError(
        f"Provider '{provider}' failed with HTTP {status}: {message}",
        status=502,
        type="api_error",
        code="upstream_error",
        retryable=True,
    )

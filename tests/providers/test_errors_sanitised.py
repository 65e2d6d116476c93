"""Upstream error texts reach clients without the platform's provider account details."""

from __future__ import annotations

from providers.errors import sanitised, upstream_status


def test_account_details_are_removed_and_status_and_type_kept():
    message = (
        "You exceeded your current quota (organization org-AbCdEf1234567890, project proj_9f8e7d6c5b4a). "
        "Incorrect API key provided: sk-proj-abc1************************xyz9. Contact billing@acme-corp.com. "
        "User: arn:aws:iam::123456789012:user/gateway is not authorized; subscription "
        "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0."
    )
    error = upstream_status("openai", 400, message)
    assert error.status == 400 and error.type == "invalid_request_error"
    for secret in ("org-AbCdEf", "proj_9f8e", "sk-proj-abc1", "billing@acme", "123456789012", "0b1c2d3e-4f50"):
        assert secret not in error.message, secret
    assert "You exceeded your current quota" in error.message
    limited = upstream_status("openai", 429, "Rate limit reached for org-AbCdEf1234567890 on tokens", "3")
    assert limited.status == 429 and "org-AbCdEf" not in limited.message and limited.headers == {"Retry-After": "3"}


def test_ordinary_messages_are_kept_and_long_ones_bounded():
    assert sanitised("max_tokens is too large: 999999 > 8192") == "max_tokens is too large: 999999 > 8192"
    assert len(sanitised("x" * 5000)) == 500

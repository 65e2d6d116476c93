"""Errors a /v1/ request can end with, rendered in OpenAI's error shape.

Every failure on the request path is a ``GatewayError`` carrying its HTTP
status, OpenAI ``type`` / ``code`` / ``param``, whether trying another
deployment could help (``retryable``) and extra response headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson


@dataclass
class GatewayError(Exception):
    message: str
    status: int = 400
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    retryable: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> bytes:
        """The OpenAI-style error body."""
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}
        )


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(message, status=400, param=param, code=code)


def authentication_error(message: str) -> GatewayError:
    return GatewayError(message, status=401, type="authentication_error", code="invalid_api_key")


def permission_error(message: str, *, code: str) -> GatewayError:
    return GatewayError(message, status=403, type="permission_error", code=code)


def rate_limited(message: str, *, retry_after: int) -> GatewayError:
    return GatewayError(
        message,
        status=429,
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry_after)},
    )

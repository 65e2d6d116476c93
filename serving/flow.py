"""The steps the non-chat ``/v1/`` model endpoints share around the upstream call.

``/v1/embeddings`` and ``/v1/completions`` go the way chat does: authenticate,
validate, resolve the model (tiers and ``provider:model`` included), keep only
the deployments whose provider kind can serve the endpoint, admit (rate
limits), call with failover, answer, settle the completion tokens. The pure
pieces (common body fields, route restriction) are separate from the I/O.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, TypeVar

from gateway_platform.config.snapshot import KeyInfo, Snapshot, config_cache
from gateway_platform.errors import GatewayError, invalid_request
from providers.adapters.base import JSON, Deployment
from providers.adapters.tokens import estimate_tokens
from routing.resolver import Route, resolve
from serving import admission
from serving.auth import authenticate
from serving.exchange import Exchange
from serving.requests import GATEWAY_FIELDS, _expect


class RoutedRequest(Protocol):
    """What the flow needs from a parsed request."""

    @property
    def model(self) -> str: ...

    @property
    def provider(self) -> str | None: ...

    @property
    def stream(self) -> bool: ...


R = TypeVar("R", bound=RoutedRequest)


@dataclass(frozen=True, slots=True)
class ModelFields:
    """The fields every model endpoint reads the same way."""

    model: str
    provider: str | None
    body: JSON
    """What is forwarded upstream: the client's body without the gateway's own fields."""


def model_fields(data: JSON) -> ModelFields:
    """``model`` (required) and the gateway's extras (``provider``, ``skill``, ``smart_routing``), validated."""
    model = data.get("model")
    if model is None:
        raise invalid_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("Invalid type for 'model': expected a non-empty string.", param="model")
    provider = _expect(data, "provider", str, "a string")
    _expect(data, "skill", str, "a string")
    _expect(data, "smart_routing", bool, "a boolean")
    body = {k: v for k, v in data.items() if k not in GATEWAY_FIELDS}
    return ModelFields(model=model.strip(), provider=provider, body=body)


def is_token(value: object) -> bool:
    """A token id: a non-negative integer (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def measure_list(value: list[Any]) -> tuple[Literal["text", "tokens"], int] | None:
    """What a non-empty list ``input`` / ``prompt`` holds and its tokens (estimated for text); None for a mix.

    Accepted: strings, token ids (one tokenized input), or non-empty token arrays.
    """
    if all(isinstance(item, str) for item in value):
        return "text", sum(estimate_tokens(item) for item in value)
    if all(is_token(item) for item in value):
        return "tokens", len(value)
    if all(isinstance(item, list) and item and all(is_token(t) for t in item) for item in value):
        return "tokens", sum(len(item) for item in value)
    return None


def unsupported(route: Route, what: str) -> GatewayError:
    """400: no deployment behind the requested model can serve this endpoint."""
    return invalid_request(
        f"The model '{route.requested}' does not support {what}.", param="model", code="model_not_supported"
    )


def restrict_route(route: Route, keep: Callable[[Deployment], bool], error: Callable[[Route], GatewayError]) -> Route:
    """The route without the deployments ``keep`` rejects; ``error(route)`` is raised when none remain."""
    kept = tuple(d for d in route.deployments if keep(d))
    if not kept:
        raise error(route)
    return route if len(kept) == len(route.deployments) else replace(route, deployments=kept)


@dataclass(frozen=True, slots=True)
class Opened:
    """An authenticated request and its route."""

    snapshot: Snapshot
    key: KeyInfo
    route: Route


async def open_request(exchange: Exchange, raw: bytes, parse: Callable[[bytes], R]) -> tuple[R, Opened]:
    """Authenticate, parse and resolve (errors raise ``GatewayError``); the exchange learns model and tier."""
    cache = config_cache()
    snapshot = await cache.snapshot()
    key = exchange.key = await authenticate(cache, snapshot, exchange.request_headers)
    request = parse(raw)
    exchange.requested_model = request.model
    exchange.stream = request.stream
    route = resolve(snapshot, key, request.model, request.provider)
    exchange.tier = route.tier
    return request, Opened(snapshot=snapshot, key=key, route=route)


@contextlib.asynccontextmanager
async def admitted(
    exchange: Exchange, opened: Opened, route: Route, prompt_tokens: int, body: JSON, *, produces_output: bool = True
) -> AsyncIterator[None]:
    """Admit the request (429 over a rate limit or budget), then settle its cost and tokens.

    These endpoints do not downgrade: a ``downgrade`` budget that does not fit refuses them.
    """
    async with admission.admitted(
        exchange,
        opened.key,
        snapshot=opened.snapshot,
        route=route,
        prompt_tokens=prompt_tokens,
        body=body,
        produces_output=produces_output,
    ):
        yield

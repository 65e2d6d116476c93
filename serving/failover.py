"""Trying a route's deployments in order: retries, backoff, circuit breakers.

For each deployment whose circuit admits the request, retryable failures
(connection errors, timeouts, 429, 5xx) are retried with exponential backoff
and jitter (honouring ``Retry-After`` up to a cap), then the next deployment
is tried. Nothing is retried once bytes have reached the client, and client
errors (4xx) are never retried. When every circuit is open the client gets
503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings

from gateway_platform.errors import GatewayError
from providers import circuit
from providers.adapters.base import Deployment
from routing.resolver import Route
from serving.exchange import Exchange, attempt_record

T = TypeVar("T")


def backoff_seconds(attempt: int, error: GatewayError, *, base: float, cap: float) -> float | None:
    """How long to wait before retrying (None: do not retry this deployment).

    Exponential with full jitter around the nominal delay; an upstream
    ``Retry-After`` wins when it is within the cap.
    """
    retry_after = error.headers.get("Retry-After")
    if retry_after:
        try:
            wait = float(retry_after)
        except ValueError:
            wait = base
        return wait if wait <= cap else None
    nominal = base * (2**attempt)
    return min(cap, nominal * random.uniform(0.5, 1.5))


def no_healthy_deployment(route: Route, retry_after: int) -> GatewayError:
    return GatewayError(
        f"No healthy deployment for '{route.requested}': every circuit is open.",
        status=503,
        type="api_error",
        code="no_healthy_deployment",
        headers={"Retry-After": str(max(1, retry_after))},
    )


def every_deployment_failed(route: Route, last: GatewayError) -> GatewayError:
    if len(route.deployments) == 1:
        return last
    return GatewayError(
        f"Every deployment for '{route.requested}' failed; the last said: {last.message}",
        status=last.status,
        type=last.type,
        code=last.code,
        headers=last.headers,
    )


def _note(
    exchange: Exchange, deployment: Deployment, error: GatewayError | None, *, started: float | None, state: str = ""
) -> None:
    exchange.in_flight = None
    exchange.attempts.append(attempt_record(deployment, error, started=started, state=state))


async def call_with_failover(exchange: Exchange, route: Route, attempt: Callable[[Deployment], Awaitable[T]]) -> T:
    """Run ``attempt`` on the route's deployments until one succeeds."""
    gateway = settings.GATEWAY
    retries = int(gateway["RETRIES_PER_DEPLOYMENT"])
    last: GatewayError | None = None
    soonest_retry: int | None = None
    for deployment in route.deployments:
        permit = exchange.circuit_permits.pop(deployment.name, None) or await circuit.acquire(deployment.name)
        if not permit.allowed:
            skipped = GatewayError("circuit open", status=503, code="circuit_open")
            _note(exchange, deployment, skipped, started=None, state=permit.state)
            soonest_retry = min(soonest_retry or permit.retry_after, permit.retry_after)
            continue
        for try_number in range(retries + 1):
            started = time.monotonic()
            # A streamed answer queues its usage record before its last byte, while this
            # attempt is still running: the record then counts it as the serving hop.
            exchange.in_flight = (deployment, started)
            try:
                result = await attempt(deployment)
            except GatewayError as err:
                if not err.retryable:
                    _note(exchange, deployment, err, started=started)
                    raise
                state = await circuit.record_failure(deployment.name)
                _note(exchange, deployment, err, started=started, state="" if state == circuit.CLOSED else state)
                if exchange.headers_sent:
                    raise  # bytes reached the client: an answer cannot be spliced
                last = err
                if state != circuit.CLOSED or try_number == retries:
                    break
                wait = backoff_seconds(
                    try_number, err, base=gateway["RETRY_BACKOFF_SECONDS"], cap=gateway["RETRY_MAX_WAIT_SECONDS"]
                )
                if wait is None:
                    break
                await asyncio.sleep(wait)
                continue
            _note(exchange, deployment, None, started=started)
            if permit.needs_success_report or try_number:
                await circuit.record_success(deployment.name)
            return result
    if last is None:
        raise no_healthy_deployment(route, soonest_retry or 1)
    raise every_deployment_failed(route, last)

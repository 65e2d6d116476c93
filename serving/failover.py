"""Trying a route's deployments in order: retries, backoff, circuit breakers.

For each deployment whose circuit admits the request, retryable failures
(connection errors, timeouts, 429, 5xx) are retried with exponential backoff
and jitter (honouring ``Retry-After`` up to a cap), then the next deployment
is tried. Nothing is retried once bytes have reached the client, and client
errors (4xx) are never retried. When every circuit is open the client gets
503 with ``Retry-After``.

A tier position shared by several deployments (``routing.balancing``) is
ordered before the first attempt: ``weighted`` already by the resolver,
``least-busy`` and ``latency`` here from the load every process reports in
Redis (``providers.load``: one Lua call, or one MGET). The chosen deployment
and why go into the route reason; the rest of its position are its first
fallbacks. What the request leaves to report (its in-flight entry, its time
to first token) goes with its usage record (``queue_load``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings

from gateway_platform.errors import GatewayError
from gateway_platform.redis_clients import Batch
from providers import circuit, load
from providers.adapters.base import Deployment
from routing import balancing
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


async def order_route(exchange: Exchange, route: Route) -> Route:
    """``route`` with its shared positions ordered (idempotent); the choice is noted on the exchange."""
    balance = route.balance
    if balance is not None and not route.picks:
        groups = balancing.present_groups(route.deployments, balance)
        if groups and balance.strategy == balancing.LEAST_BUSY:
            route = await _least_busy(exchange, route, groups)
        elif groups and balance.strategy == balancing.LATENCY:
            route = await _lowest_latency(exchange, route, groups)
        elif groups:
            route = balancing.weighted(route, balance)
    if route.picks:
        _note_picks(exchange, route)
    return route


async def _least_busy(exchange: Exchange, route: Route, groups: list[list[balancing.Member]]) -> Route:
    assert route.balance is not None
    ties = balancing.weighted_order(groups[0], balancing.rng())
    weights = dict(groups[0])
    others = [name for group in groups[1:] for name, _ in group]
    counted = await load.choose_least_busy([(name, weights[name]) for name in ties], others, exchange.request_id)
    if counted is None:  # Redis failed: by weight
        return balancing.weighted(route, route.balance)
    if counted.chosen is not None:
        exchange.load_marks.append(load.Mark(counted.chosen, busy=True))
    route = balancing.least_busy(route, groups, counted.in_flight, counted.chosen)
    _keep_permit(exchange, route, counted.permits)
    return route


async def _lowest_latency(exchange: Exchange, route: Route, groups: list[list[balancing.Member]]) -> Route:
    assert route.balance is not None
    read = await load.latencies([name for group in groups for name, _ in group])
    if read is None:  # Redis failed: by weight
        return balancing.weighted(route, route.balance)
    measured, permits = read
    route = balancing.lowest_latency(route, groups, measured)
    _keep_permit(exchange, route, permits)
    return route


def _keep_permit(exchange: Exchange, route: Route, permits: dict[str, circuit.Permit]) -> None:
    """The first deployment's breaker, read with the load: the first attempt needs no circuit call."""
    first = route.deployments[0].name
    if first in permits:
        exchange.circuit_permits[first] = permits[first]


def _note_picks(exchange: Exchange, route: Route) -> None:
    names = {d.name for d in route.deployments}
    picks = [pick for pick in route.picks if pick.chosen in names]
    if not picks:
        return
    exchange.route_reason = {**exchange.route_reason, "balance": [pick.as_dict() for pick in picks]}
    note = balancing.header_note(picks)
    if note not in exchange.route_header:
        exchange.route_header = f"{exchange.route_header}; {note}" if exchange.route_header else note


def _timed(route: Route) -> frozenset[str]:
    """The deployments whose time to first token this route's attempts report (``latency`` positions)."""
    balance = route.balance
    if balance is None or balance.strategy != balancing.LATENCY:
        return frozenset()
    return frozenset(name for group in balance.groups for name, _ in group)


def queue_load(exchange: Exchange, batch: Batch) -> None:
    """Queue what the request reports about deployment load (sent with its usage record)."""
    marks, exchange.load_marks = exchange.load_marks, []
    if marks:
        load.queue_marks(
            batch, marks, exchange.request_id, first_token=exchange.first_token_monotonic, now=time.monotonic()
        )


async def call_with_failover(exchange: Exchange, route: Route, attempt: Callable[[Deployment], Awaitable[T]]) -> T:
    """Run ``attempt`` on the route's deployments until one succeeds."""
    timed = _timed(route)
    route = await order_route(exchange, route)
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
            mark = None
            if deployment.name in timed:
                mark = load.Mark(deployment.name, started=started)
                exchange.load_marks.append(mark)
            try:
                result = await attempt(deployment)
            except asyncio.CancelledError:
                if mark is not None and exchange.first_token_monotonic is None:
                    exchange.load_marks.remove(mark)  # the client left: no time to first token to report
                raise
            except GatewayError as err:
                if mark is not None:
                    if err.retryable:  # the provider's fault: its time to fail counts as its latency
                        mark.seconds = time.monotonic() - started
                    else:
                        exchange.load_marks.remove(mark)
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

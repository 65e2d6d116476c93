"""Admission control before a request goes upstream: rate limits and budgets, atomically.

``admitted`` wraps the upstream call. Before it, one Redis Lua call
(``billing.enforcement``) charges the request against every RPM/TPM limit of
its key, team, tenant and model and reserves its maximum cost in every budget
above it — or refuses with 429 and charges nothing. The maximum cost is an
upper bound on the prompt tokens plus the output cap (``max_tokens``, else the
tier's, the models' or the gateway's default, which is then set on the
forwarded body so the upstream enforces it) at the route's priciest prices.
Afterwards, whatever happened (answer, upstream failure, client disconnect,
cancellation), the reservation is settled to the actual cost or released.
A budget with the ``downgrade`` action first retries the request on its
downgrade tier (``X-Gateway-Budget: downgraded``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from billing import enforcement, inflight, ratelimit
from billing.budgets import (
    MILLION,
    BudgetClaim,
    budget_exceeded,
    claims_for,
    fitting_max_tokens,
    settled_amounts,
    usd_to_nano,
)
from billing.enforcement import Verdict
from billing.limits import limits_of
from gateway_platform.config.snapshot import KeyInfo, Snapshot
from gateway_platform.errors import GatewayError, rate_limited
from gateway_platform.redis_clients import Batch
from providers import circuit
from providers.adapters.base import Deployment
from providers.adapters.tokens import prompt_token_bound
from routing.resolver import Route, tier_route
from routing.tier_views import tiers_for
from serving.exchange import Exchange

logger = logging.getLogger(__name__)

DOWNGRADED = "downgraded"
BLOCKED = "blocked"


class Lookahead(Protocol):
    """Reads a later step of the request sends in admission's Redis round trip (the exact-cache lookup).

    ``queue`` gets the route being admitted and the body as it goes upstream when admitted (with the
    ``max_tokens`` admission sets); ``receive`` gets the batch's results. A downgraded request queues
    again for the downgrade tier's route, so the last ``receive`` belongs to the route admitted.
    ``reserve_usd`` is what that step may spend on the tenant's behalf while admitted (a provider
    embedding of the prompt): reserved on top of the upstream call, before ``queue``.
    """

    def reserve_usd(self, route: Route, body: dict[str, Any]) -> Decimal: ...

    def queue(self, batch: Batch, route: Route, body: dict[str, Any]) -> None: ...

    def receive(self, results: list[Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Ticket:
    """What an admitted request holds until it settles."""

    reservation: str
    claims: tuple[BudgetClaim, ...]
    token_limits: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Attempt:
    route: Route
    legs: list[list[Deployment]]
    rates: list[ratelimit.Limit]
    claims: list[BudgetClaim]
    output_cap: int
    cap_from_request: bool
    prompt_bound: int
    extra_usd: Decimal  # reserved for the lookahead's own paid calls (a provider embedding)
    verdict: enforcement.Verdict
    inflight: str  # the hash holding the request's in-flight record once admitted


def output_cap(snapshot: Snapshot, key: KeyInfo, route: Route, body: dict[str, Any]) -> tuple[int, bool]:
    """The most output tokens a request may produce, and whether the client set it."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return asked, True
    tier = tiers_for(snapshot, key.tenant_id).tiers.get(route.tier) if route.tier else None
    if tier is not None and tier.max_output_tokens:
        return tier.max_output_tokens, False
    model_caps = [d.max_output_tokens for d in route.deployments if d.max_output_tokens]
    return (min(model_caps) if model_caps else int(settings.GATEWAY["DEFAULT_MAX_OUTPUT_TOKENS"])), False


def _choices(body: dict[str, Any]) -> int:
    """How many completions the upstream generates (and bills): ``n``, or ``best_of`` when larger."""
    counts = [value for value in (body.get("n"), body.get("best_of")) if isinstance(value, int)]
    return max([1, *(value for value in counts if not isinstance(value, bool))])


async def _try(
    exchange: Exchange,
    key: KeyInfo,
    snapshot: Snapshot,
    route: Route,
    *,
    also: Sequence[Route],
    prompt_tokens: int,
    body: dict[str, Any],
    produces_output: bool,
    lookahead: Lookahead | None = None,
    prompt_bound: Callable[[], int] | None = None,
) -> _Attempt:
    limits = limits_of(snapshot)
    legs = [list(r.deployments) for r in (*also, route)]
    names = frozenset(d.name for leg in legs for d in leg)
    gateway = settings.GATEWAY
    rates = ratelimit.limits_for(
        key,
        limits,
        names,
        prompt_tokens=prompt_tokens,
        default_rpm=gateway["DEFAULT_RPM"],
        default_tpm=gateway["DEFAULT_TPM"],
    )
    budgets = [b for b in limits.budgets_for(key) if b.applies_to(names)]
    cap, from_request = output_cap(snapshot, key, route, body) if produces_output else (0, True)
    bound = (prompt_bound() if prompt_bound is not None else prompt_token_bound(body)) if budgets else 0
    extra = lookahead.reserve_usd(route, body) if budgets and lookahead is not None else Decimal(0)
    claims = claims_for(
        budgets, legs, prompt_tokens=bound, output_tokens=cap * _choices(body), now=timezone.now(), extra_usd=extra
    )
    sets_cap = bool(claims) and produces_output and not from_request
    hash_key = inflight.owner_key(inflight.owner())
    verdict = await _reserve_and_peek(
        exchange,
        enforcement.admission(
            rates,
            claims,
            request_id=exchange.request_id,
            track=_tracking(exchange, key, hash_key, legs, claims, prompt_tokens),
        ),
        legs,
        lookahead=lookahead,
        route=route,
        body={**body, "max_tokens": cap} if sets_cap and lookahead is not None else body,
    )
    exchange.rate_headers = ratelimit.headers(rates, verdict.remaining)
    return _Attempt(route, legs, rates, claims, cap, from_request, bound, extra, verdict, hash_key)


def _tracking(
    exchange: Exchange,
    key: KeyInfo,
    hash_key: str,
    legs: list[list[Deployment]],
    claims: Sequence[BudgetClaim],
    prompt_tokens: int,
) -> enforcement.Tracking:
    """The in-flight record admission writes (``billing.inflight``): what a lost request is billed on.

    Its estimate: the prompt tokens at the input price of the deployment tried first.
    """
    first = legs[0][0] if legs and legs[0] else None
    estimate = Decimal(prompt_tokens) * first.input_cost_per_million / MILLION if first is not None else Decimal(0)
    fields = {
        "request_id": exchange.request_id,
        "client_request_id": exchange.client_request_id,
        "endpoint": exchange.endpoint,
        "started_at": exchange.started_at.isoformat(),
        "tenant_id": key.tenant_id,
        "team_id": key.team_id,
        "api_key_id": key.id,
        "requested_model": exchange.requested_model,
        "tier": exchange.tier or "",
        "model": first.name if first is not None else "",
        "provider": first.provider.name if first is not None else "",
        "stream": exchange.stream,
        "session": exchange.session,
    }
    budgets = [(claim.key, claim.budget.model or "") for claim in claims]

    def track(reservation: str) -> tuple[str, bytes]:
        record = inflight.payload(
            fields=fields, reservation=reservation, budgets=budgets, prompt_tokens=prompt_tokens, cost_usd=estimate
        )
        return hash_key, record

    return track


async def _reserve_and_peek(
    exchange: Exchange,
    call: enforcement.Admission,
    legs: list[list[Deployment]],
    *,
    lookahead: Lookahead | None,
    route: Route,
    body: dict[str, Any],
) -> Verdict:
    """Admit, and read the first deployment's circuit breaker (and the lookahead's keys), in one Redis round trip.

    A closed breaker read here spares failover its own call (``exchange.circuit_permits``).
    """
    batch = Batch()
    if lookahead is not None:
        lookahead.queue(batch, route, body)
    admitted_at = enforcement.queue_admission(batch, call)
    first = legs[0][0] if legs and legs[0] else None
    peeked_at = circuit.queue_peek(batch, first.name) if first is not None else None
    results = await batch.execute()
    if lookahead is not None:
        lookahead.receive(results)
    raw = results[admitted_at]
    if isinstance(raw, Exception):
        raise raw
    verdict = await enforcement.run_admission(call, raw)
    if first is not None and peeked_at is not None:
        permit = circuit.peeked_permit(results[peeked_at])
        if permit is not None:
            exchange.circuit_permits[first.name] = permit
    return verdict


def _refusal(attempt: _Attempt, body: dict[str, Any], *, downgraded_from: str = "") -> GatewayError:
    verdict = attempt.verdict
    if verdict.outcome == enforcement.RATE_LIMITED:
        limit = attempt.rates[verdict.refused]
        return rate_limited(
            f"Rate limit reached for {limit.describe()}. Try again in {verdict.retry_after} s.",
            retry_after=verdict.retry_after,
        )
    claim = attempt.claims[verdict.refused]
    remaining = claim.cap - verdict.settled - verdict.reserved - usd_to_nano(attempt.extra_usd)
    fits = fitting_max_tokens(claim, remaining, attempt.legs, attempt.prompt_bound, _choices(body))
    return budget_exceeded(
        claim,
        settled=verdict.settled,
        reserved=verdict.reserved,
        fits_max_tokens=fits,
        asked_max_tokens=attempt.output_cap,
        now=timezone.now(),
        downgraded_from=downgraded_from,
    )


def _downgrade_route(snapshot: Snapshot, key: KeyInfo, attempt: _Attempt) -> Route | None:
    """The route on the refusing budget's downgrade tier, if it has one and it differs."""
    budget = attempt.claims[attempt.verdict.refused].budget
    if budget.action != "downgrade" or not budget.downgrade_tier or budget.downgrade_tier == attempt.route.tier:
        return None
    tier = tiers_for(snapshot, key.tenant_id).tiers.get(budget.downgrade_tier)
    if tier is None or not tier.deployments:
        logger.warning(
            "budget downgrade tier is missing", extra={"budget_id": budget.id, "tier": budget.downgrade_tier}
        )
        return None
    # The admin chose the downgrade tier for this budget: the key's model list does not restrict it.
    return tier_route(snapshot, replace(key, allowed_models=frozenset()), tier)


async def admit(
    exchange: Exchange,
    key: KeyInfo,
    *,
    snapshot: Snapshot,
    route: Route,
    prompt_tokens: int,
    body: dict[str, Any],
    also: Sequence[Route] = (),
    downgrade: bool = False,
    produces_output: bool = True,
    lookahead: Lookahead | None = None,
    prompt_bound: Callable[[], int] | None = None,
) -> tuple[Ticket, Route]:
    """Charge the rate limits and reserve the budgets, or raise 429; returns the ticket and the route to use."""

    async def attempt_on(candidate: Route) -> _Attempt:
        return await _try(
            exchange,
            key,
            snapshot,
            candidate,
            also=also,
            prompt_tokens=prompt_tokens,
            body=body,
            produces_output=produces_output,
            lookahead=lookahead,
            prompt_bound=prompt_bound,
        )

    attempt = await attempt_on(route)
    if attempt.verdict.outcome == enforcement.OVER_BUDGET and downgrade:
        cheaper = _downgrade_route(snapshot, key, attempt)
        if cheaper is not None:
            first, attempt = attempt, await attempt_on(cheaper)
            if attempt.verdict.outcome == enforcement.OVER_BUDGET:
                exchange.budget_status = BLOCKED
                raise _refusal(attempt, body, downgraded_from=first.route.tier or first.route.requested)
            if attempt.verdict.outcome == enforcement.ADMITTED:
                exchange.budget_status = DOWNGRADED
                exchange.extra_headers["X-Gateway-Budget"] = DOWNGRADED
                exchange.tier = cheaper.tier
    if attempt.verdict.outcome != enforcement.ADMITTED:
        if attempt.verdict.outcome == enforcement.OVER_BUDGET:
            exchange.budget_status = BLOCKED
        raise _refusal(attempt, body)
    if attempt.claims and produces_output and not attempt.cap_from_request:
        body["max_tokens"] = attempt.output_cap  # the upstream enforces what was reserved
    exchange.inflight = attempt.inflight  # removed with the usage record (``serving.consumers.base``)
    ticket = Ticket(
        attempt.verdict.reservation,
        tuple(attempt.claims),
        tuple(limit.name for limit in attempt.rates if limit.unit == ratelimit.TOKENS),
    )
    return ticket, attempt.route


def _settlement(exchange: Exchange, ticket: Ticket) -> tuple[Sequence[int], int] | None:
    """The nano-USD per claim and the completion tokens to settle (None when there is nothing to do)."""
    tokens = exchange.usage.completion_tokens if exchange.usage is not None else 0
    if not ticket.claims and not tokens:
        return None
    served = exchange.deployment.name if exchange.deployment is not None else None
    return settled_amounts(ticket.claims, exchange.cost_usd, served), tokens


def queue_settlement(exchange: Exchange, batch: Batch) -> int | None:
    """Queue the request's settlement in ``batch`` (sent with its usage record, before the last byte).

    The ``admitted`` block then has nothing left to settle. Returns the index of the result, if any.
    """
    ticket, exchange.ticket = exchange.ticket, None
    if ticket is None:
        return None
    settlement = _settlement(exchange, ticket)
    if settlement is None:
        return None
    actual, tokens = settlement
    return enforcement.queue_settle(
        batch, ticket.reservation, ticket.claims, actual, token_limits=ticket.token_limits, tokens=tokens
    )


async def settle(exchange: Exchange, ticket: Ticket) -> None:
    """Settle the reservations to the actual cost (0 releases them) and charge the completion tokens."""
    settlement = _settlement(exchange, ticket)
    if settlement is None:
        return
    actual, tokens = settlement
    try:
        await enforcement.settle(
            ticket.reservation, ticket.claims, actual, token_limits=ticket.token_limits, tokens=tokens
        )
    except Exception:
        # The reservation expires on its own; reconciliation restores the settled spend from PostgreSQL.
        logger.exception("could not settle budget reservations", extra={"reservation": ticket.reservation})


@asynccontextmanager
async def admitted(
    exchange: Exchange,
    key: KeyInfo,
    *,
    snapshot: Snapshot,
    route: Route,
    prompt_tokens: int,
    body: dict[str, Any],
    also: Sequence[Route] = (),
    downgrade: bool = False,
    produces_output: bool = True,
    lookahead: Lookahead | None = None,
    prompt_bound: Callable[[], int] | None = None,
) -> AsyncIterator[Route]:
    """Admit the request for the duration of the block (which gets the route to use), then settle.

    ``also``: routes the request may call before ``route`` (a cascade's cheaper tier); their cost is
    reserved too, also when the request is downgraded (the block gets the downgrade tier's route).
    ``lookahead``: reads sent in the same Redis round trip as the admission (``Lookahead``).
    ``prompt_bound``: the request's ``prompt_token_bound`` when the caller knows it cheaper (from the raw size).
    """
    ticket, route = await admit(
        exchange,
        key,
        snapshot=snapshot,
        route=route,
        prompt_tokens=prompt_tokens,
        body=body,
        also=also,
        downgrade=downgrade,
        produces_output=produces_output,
        lookahead=lookahead,
        prompt_bound=prompt_bound,
    )
    # Settled with the usage record when it is queued (one round trip for both), unless a ticket
    # is already pending for this exchange; whatever is still pending when the block ends settles here.
    owns = exchange.ticket is None
    if owns:
        exchange.ticket = ticket
    try:
        yield route
    finally:
        if not owns or exchange.ticket is ticket:
            if owns:
                exchange.ticket = None
            # Shielded: a cancelled request (client gone) must still release what it reserved.
            await asyncio.shield(settle(exchange, ticket))

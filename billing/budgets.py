"""What a request may cost and which budgets it must fit (pure functions).

Money in Redis is counted in integer nano-USD (1e-9 USD): Lua numbers are
doubles, exact for integers up to 2**53, i.e. 9 million USD per budget period.
Reservations and settlements round up, so Redis never under-counts PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from billing.limits import BudgetInfo
from billing.periods import Period, period_containing, zone
from gateway_platform.errors import GatewayError
from providers.adapters.base import Deployment

NANO_PER_USD = Decimal(1_000_000_000)
MILLION = Decimal(1_000_000)
KEY_GRACE = timedelta(days=7)  # a period's counters outlive it for late settlements and alerts


def usd_to_nano(usd: Decimal) -> int:
    """Integer nano-USD, rounded up."""
    return int((usd * NANO_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def nano_to_usd(nano: int) -> Decimal:
    return Decimal(nano) / NANO_PER_USD


@dataclass(frozen=True, slots=True)
class BudgetClaim:
    """One budget a request must fit, in the period it falls into, and what it reserves there."""

    budget: BudgetInfo
    period: Period
    amount: int  # nano-USD reserved for this request

    @property
    def key(self) -> str:
        """The Redis hash of this budget period: ``s`` settled, ``r`` reserved, ``q:<id>`` per reservation."""
        return budget_key(self.budget.id, self.period)

    @property
    def cap(self) -> int:
        return usd_to_nano(self.budget.amount_usd)

    @property
    def expire_at(self) -> int:
        """When the period's counters may go (Unix seconds; 0: never, for total budgets)."""
        return 0 if self.period.end is None else int((self.period.end + KEY_GRACE).timestamp())


def budget_key(budget_id: int, period: Period) -> str:
    return f"bud:{budget_id}:{period.stamp}"


def max_cost_usd(deployments: Iterable[Deployment], prompt_tokens: int, output_tokens: int) -> Decimal:
    """The most one upstream call can cost on any of ``deployments`` (the route's priciest prices)."""
    listed = list(deployments)
    input_price = max((d.input_cost_per_million for d in listed), default=Decimal(0))
    output_price = max((d.output_cost_per_million for d in listed), default=Decimal(0))
    return (prompt_tokens * input_price + output_tokens * output_price) / MILLION


Leg = Sequence[Deployment]
"""The deployments one upstream call may go to; a request makes one call per leg at most
(two for a cascade: the cheaper tier, then the tier it escalates to)."""


def _legs_for(budget: BudgetInfo, legs: Sequence[Leg]) -> list[Leg]:
    if not budget.model:
        return list(legs)
    return [[d for d in leg if d.name == budget.model] for leg in legs]


def claims_for(
    budgets: Sequence[BudgetInfo],
    legs: Sequence[Leg],
    *,
    prompt_tokens: int,
    output_tokens: int,
    now: datetime,
    extra_usd: Decimal = Decimal(0),
) -> list[BudgetClaim]:
    """The budgets a request must fit, each with what it reserves: the sum of its legs' maximum costs.

    A per-model budget applies when the request may be served by that model,
    and reserves what the request would cost there. ``extra_usd``: what the request
    may spend besides its upstream calls (a provider embedding for the cache), reserved in every claim.
    """
    names = frozenset(d.name for leg in legs for d in leg)
    claims = []
    for budget in budgets:
        if not budget.applies_to(names):
            continue
        cost = sum((max_cost_usd(leg, prompt_tokens, output_tokens) for leg in _legs_for(budget, legs)), extra_usd)
        period = period_containing(budget.period, budget.timezone, now)
        claims.append(BudgetClaim(budget=budget, period=period, amount=usd_to_nano(cost)))
    return claims


def settled_amounts(claims: Sequence[BudgetClaim], cost_usd: Decimal, served_model: str | None) -> list[int]:
    """What each claim settles to: the actual cost, except 0 on a per-model budget of another model."""
    nano = usd_to_nano(cost_usd) if cost_usd > 0 else 0
    return [nano if not c.budget.model or c.budget.model == served_model else 0 for c in claims]


def fitting_max_tokens(
    claim: BudgetClaim, remaining: int, legs: Sequence[Leg], prompt_tokens: int, choices: int
) -> int:
    """The largest ``max_tokens`` with which the request would fit ``remaining`` nano-USD (0 if none would)."""
    own = _legs_for(claim.budget, legs)
    prompt_cost = usd_to_nano(sum((max_cost_usd(leg, prompt_tokens, 0) for leg in own), Decimal(0)))
    per_token = sum(  # nano-USD per output token, over every leg
        (max((d.output_cost_per_million for d in leg), default=Decimal(0)) * 1000 for leg in own), Decimal(0)
    )
    if remaining <= prompt_cost:
        return 0
    if per_token <= 0:
        return 1_000_000
    return max(0, math.floor(Decimal(remaining - prompt_cost) / per_token / max(1, choices)))


def _when(instant: datetime, tz_name: str) -> str:
    local = instant.astimezone(zone(tz_name))
    text = f"{local:%Y-%m-%d %H:%M} {tz_name or 'UTC'}"
    if local.utcoffset() != timedelta(0):
        text += f" ({instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
    return text


def budget_exceeded(
    claim: BudgetClaim,
    *,
    settled: int,
    reserved: int,
    fits_max_tokens: int,
    asked_max_tokens: int,
    now: datetime,
    downgraded_from: str = "",
) -> GatewayError:
    """429 ``insufficient_quota`` / ``budget_exceeded``: names the budget, its reset, what remains, what would fit."""
    budget = claim.budget
    remaining = max(0, claim.cap - settled - reserved)
    parts = [
        f"Budget exceeded: the {budget.period} budget of {budget.label} "
        f"({budget.amount_usd:.2f} USD) has {nano_to_usd(remaining):.6f} USD left"
    ]
    if claim.period.end is not None:
        parts.append(f" until it resets at {_when(claim.period.end, budget.timezone)}")
    parts.append(f"; this request could cost up to {nano_to_usd(claim.amount):.6f} USD")
    if reserved:
        parts.append(f" and requests in flight hold {nano_to_usd(reserved):.6f} USD")
    parts.append(".")
    if downgraded_from:
        parts.append(f" It did not fit on tier '{downgraded_from}' or on the downgrade tier either.")
    if 0 < fits_max_tokens < asked_max_tokens:
        parts.append(f" A request with max_tokens of at most {fits_max_tokens} would fit.")
    headers: dict[str, str] = {}
    if settled + claim.amount <= claim.cap:
        headers["Retry-After"] = "1"  # it fits once requests in flight settle
    elif claim.period.end is not None:
        headers["Retry-After"] = str(max(1, math.ceil((claim.period.end - now).total_seconds())))
    return GatewayError("".join(parts), status=429, type="insufficient_quota", code="budget_exceeded", headers=headers)

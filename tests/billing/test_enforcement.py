"""The admission Lua: rate limits and budget reservations, atomic under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar

import pytest
from django.db import connections
from django.utils import timezone

from billing import enforcement
from billing.budgets import BudgetClaim, usd_to_nano
from billing.limits import BudgetInfo
from billing.models import UsageEvent
from billing.periods import period_containing
from billing.ratelimit import Limit
from gateway_platform.redis_clients import sync_client
from tests.factories import make_key

pytestmark = pytest.mark.django_db(transaction=True)

NANO = 1_000_000_000
T = TypeVar("T")


def claim_on(
    key_id: int, *, amount_usd: str = "1.00", reserve: int = NANO // 10, period: str = "monthly"
) -> BudgetClaim:
    info = BudgetInfo(
        id=int(uuid.uuid4().int % 10**9),
        scope="key",
        scope_id=key_id,
        label="API key 'k'",
        amount_usd=Decimal(amount_usd),
        period=period,
        action="block",
        timezone="UTC",
    )
    return BudgetClaim(info, period_containing(period, "UTC", timezone.now()), reserve)


async def in_thread(fn: Callable[[], T]) -> T:
    """Run ORM work off the event loop and hand the thread's pooled connection back."""

    def run() -> T:
        try:
            return fn()
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)


def state(claim: BudgetClaim) -> tuple[int, int]:
    settled, reserved = sync_client().hmget(claim.key, "s", "r")
    return int(settled or 0), int(reserved or 0)


async def test_concurrent_reservations_never_exceed_the_budget():
    claim = claim_on(0, amount_usd="1.00", reserve=NANO // 10)  # ten fit
    verdicts = await asyncio.gather(*(enforcement.reserve([], [claim], request_id=f"r{i}") for i in range(200)))
    admitted = [v for v in verdicts if v.outcome == enforcement.ADMITTED]
    assert len(admitted) == 10
    assert all(v.outcome == enforcement.OVER_BUDGET for v in verdicts if v not in admitted)
    assert state(claim) == (0, NANO)


async def test_settling_replaces_the_reservation_by_the_actual_cost_and_release_frees_it():
    claim = claim_on(0, amount_usd="1.00", reserve=NANO // 2)
    first = await enforcement.reserve([], [claim], request_id="a")
    second = await enforcement.reserve([], [claim], request_id="b")
    assert (first.outcome, second.outcome) == (enforcement.ADMITTED, enforcement.ADMITTED)
    assert (await enforcement.reserve([], [claim], request_id="c")).outcome == enforcement.OVER_BUDGET
    await enforcement.settle(first.reservation, [claim], [NANO // 10], token_limits=[], tokens=0)
    await enforcement.settle(second.reservation, [claim], [0], token_limits=[], tokens=0)  # upstream failed
    assert state(claim) == (NANO // 10, 0)
    third = await enforcement.reserve([], [claim], request_id="d")
    assert third.outcome == enforcement.ADMITTED


async def test_a_request_must_fit_every_budget_and_a_refusal_reserves_nothing():
    roomy, tight = claim_on(0, amount_usd="10"), claim_on(0, amount_usd="0.05")
    verdict = await enforcement.reserve([Limit("key:x:rpm", 100, 1)], [roomy, tight], request_id="a")
    assert verdict.outcome == enforcement.OVER_BUDGET and verdict.refused == 1
    assert state(roomy) == (0, 0)
    assert sync_client().get(f"rl:key:x:rpm:{int(timezone.now().timestamp()) // 60}") is None


async def test_a_reservation_of_a_dead_process_expires(settings):
    settings.GATEWAY = {**settings.GATEWAY, "BUDGET_RESERVATION_TTL_SECONDS": 0}
    claim = claim_on(0, amount_usd="1.00", reserve=NANO)
    assert (await enforcement.reserve([], [claim], request_id="dies")).outcome == enforcement.ADMITTED
    await asyncio.sleep(0.01)
    # The next admission sweeps the expired reservation first.
    assert (await enforcement.reserve([], [claim], request_id="next")).outcome == enforcement.ADMITTED


async def test_an_unseeded_period_is_seeded_from_postgresql_once():
    key, _ = await in_thread(make_key)
    now = timezone.now()
    period = period_containing("monthly", "UTC", now)

    def events() -> None:
        for started, cost in ((now, "0.25"), (period.start, "0.50"), (period.start - timedelta(seconds=1), "9")):
            UsageEvent.objects.create(
                request_id=uuid.uuid4().hex,
                api_key=key,
                team_id=key.team_id,
                tenant_id=key.team.tenant_id,
                endpoint="chat.completions",
                status_code=200,
                cost_usd=Decimal(cost),
                started_at=started,
                finished_at=started,
            )

    await in_thread(events)
    claim = claim_on(key.pk, amount_usd="1.00", reserve=NANO // 5)
    verdict = await enforcement.reserve([], [claim], request_id="a")
    assert verdict.outcome == enforcement.ADMITTED
    assert state(claim) == (usd_to_nano(Decimal("0.75")), NANO // 5)  # last month's 9 USD is not counted
    assert (await enforcement.reserve([], [claim], request_id="b")).outcome == enforcement.OVER_BUDGET


async def test_rate_limits_admit_exactly_the_limit_under_concurrency():
    limits = [Limit("key:rl-test:rpm", 10, 1), Limit("key:rl-test:tpm", 1000, 50)]
    verdicts = await asyncio.gather(*(enforcement.reserve(limits, [], request_id=f"r{i}") for i in range(64)))
    assert sum(v.outcome == enforcement.ADMITTED for v in verdicts) == 10
    refused = [v for v in verdicts if v.outcome == enforcement.RATE_LIMITED]
    assert all(v.refused == 0 and v.retry_after >= 1 and v.remaining[0] == 0 for v in refused)


async def test_completion_tokens_count_against_the_token_limits():
    limits = [Limit("key:tpm-test:tpm", 100, 10)]
    first = await enforcement.reserve(limits, [], request_id="a")
    assert first.remaining == (90,)
    await enforcement.settle(first.reservation, [], [], token_limits=["key:tpm-test:tpm"], tokens=85)
    assert (await enforcement.reserve(limits, [], request_id="b")).outcome == enforcement.RATE_LIMITED

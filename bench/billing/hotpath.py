"""The hot-path cost of admission: the Redis Lua calls, and the whole admit + settle step.

A key under three monthly budgets (key, team, tenant) and six rate limits (RPM and TPM of key,
team and tenant) — the worst ordinary case — admitted and settled ``n`` times in a row against
the local Redis, each call timed on its own; then the same with ``concurrency`` requests in
flight. Also the XADD of a usage record that now precedes every answer's last bytes.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal

PING = "PING (the floor: one round trip on this machine)"


@dataclass(frozen=True, slots=True)
class Latency:
    name: str
    calls: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    redis_us_per_call: float  # time inside Redis per EVALSHA / XADD (INFO commandstats), free of client scheduling
    per_second: float  # calls completed per second of wall time (one process, one event loop)


def _summary(name: str, samples: list[float], wall: float, redis_us: float) -> Latency:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Latency(
        name,
        len(samples),
        statistics.median(ordered) * 1000,
        p99 * 1000,
        ordered[-1] * 1000,
        redis_us,
        len(samples) / wall,
    )


async def _redis_us_per_call(command: str) -> float:
    from gateway_platform.redis_clients import async_client

    stats = await async_client().info("commandstats")
    return float(stats.get(f"cmdstat_{command}", {}).get("usec_per_call", float("nan")))


async def _timed(calls: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> list[float]:
    samples: list[float] = []

    async def worker(offset: int) -> None:
        for i in range(offset, calls, concurrency):
            began = time.perf_counter()
            await one(i)
            samples.append(time.perf_counter() - began)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return samples


async def measure(calls: int, concurrency: int) -> list[Latency]:
    """Admission latencies (see the module docstring); budgets are large so every call admits."""
    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from billing import enforcement, usage
    from billing.budgets import claims_for
    from billing.limits import limits_of
    from billing.models import Budget
    from billing.ratelimit import limits_for
    from gateway_platform.config.snapshot import load_key, load_snapshot
    from gateway_platform.redis_clients import async_client
    from routing.resolver import resolve
    from serving import admission
    from serving.exchange import Exchange
    from tenants.models import ApiKey

    def setup() -> tuple:
        key_row = ApiKey.objects.select_related("team__tenant").order_by("pk").first()
        assert key_row is not None
        team, tenant = key_row.team, key_row.team.tenant
        for scope in ({"api_key": key_row}, {"team": team}, {"tenant": tenant}):
            Budget.objects.filter(**scope).delete()  # type: ignore[misc]  # a --reuse run starts over
            Budget.objects.create(amount_usd=Decimal("1000000"), **scope)  # type: ignore[misc]
        team.rpm_limit, team.tpm_limit = 10**8, 10**9
        team.save()
        tenant.rpm_limit, tenant.tpm_limit = 10**8, 10**9
        tenant.save()
        return load_snapshot(1), load_key(key_row.key_hash)

    snapshot, key = await sync_to_async(setup)()
    key = replace(key, rpm_limit=10**8, tpm_limit=10**9)
    route = resolve(snapshot, key, "code_gen")
    limits = limits_of(snapshot)
    names = frozenset(d.name for d in route.deployments)
    body = {"model": "code_gen", "messages": [{"role": "user", "content": "x" * 2000}], "max_tokens": 512}
    rates = limits_for(key, limits, names, prompt_tokens=500, default_rpm=10**8, default_tpm=10**9)
    claims = claims_for(
        limits.budgets_for(key), [route.deployments], prompt_tokens=600, output_tokens=512, now=timezone.now()
    )
    assert len(rates) == 6 and len(claims) == 3
    await enforcement.reserve(rates, claims, request_id="warm-up")  # seeds the three budget periods

    async def lua(i: int) -> None:
        verdict = await enforcement.reserve(rates, claims, request_id=f"bench-{i}")
        assert verdict.outcome == enforcement.ADMITTED
        await enforcement.settle(
            verdict.reservation, claims, [1000, 1000, 1000], token_limits=[r.name for r in rates[1::2]], tokens=100
        )

    async def reserve_only(i: int) -> None:
        await enforcement.reserve(rates, claims, request_id=f"bench-r{i}")

    async def whole(i: int) -> None:
        exchange = Exchange(request_id=f"whole-{i}", endpoint="chat.completions", request_headers={})
        async with admission.admitted(
            exchange, key, snapshot=snapshot, route=route, prompt_tokens=500, body=dict(body), downgrade=True
        ):
            exchange.cost_usd = Decimal("0.001")

    record = usage.UsageRecord(
        request_id="x",
        endpoint="chat.completions",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        status_code=200,
        cost_usd=Decimal("0.001"),
    )
    payload = record.to_json()

    async def xadd(i: int) -> None:
        await async_client().xadd("bench:usage", {"e": payload}, maxlen=10_000, approximate=True)

    async def ping(i: int) -> None:
        await async_client().ping()

    results = []
    for name, fn, command in (
        (PING, ping, "ping"),
        ("reserve (Lua: 6 limits + 3 budgets)", reserve_only, "evalsha"),
        ("reserve + settle (2 Lua calls)", lua, "evalsha"),
        ("admission.admitted() enter + exit (Python + 2 Lua calls)", whole, "evalsha"),
        ("XADD usage record before the last body chunk", xadd, "xadd"),
    ):
        for conc in (1, concurrency):
            await async_client().config_resetstat()
            began = time.perf_counter()
            samples = await _timed(calls, conc, fn)
            wall = time.perf_counter() - began
            results.append(_summary(f"{name}, {conc} in flight", samples, wall, await _redis_us_per_call(command)))
    await async_client().delete("bench:usage")
    return results

"""Atomic admission in Redis: rate limits and budget reservations in one Lua call.

``reserve`` checks every rate limit (sliding window) and every budget above the
request, and only if all of them admit it charges the limits and reserves the
request's maximum cost in each budget period — one script, so two processes
can never both take the last cent or the last request. ``settle`` replaces the
reservation by the actual cost (0 releases it) and charges completion tokens.

Budget period hash ``bud:<budget>:<period start>``: ``s`` settled nano-USD,
``r`` reserved nano-USD in flight, ``q:<reservation>`` each reservation; the
sorted set ``…:r`` holds reservation deadlines, so a reservation of a process
that died is swept after ``GATEWAY_BUDGET_RESERVATION_TTL_SECONDS``. A period
without ``s`` has not been seeded: the script refuses to guess and the caller
seeds it from PostgreSQL (``billing.spend``) first.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing.budgets import BudgetClaim, usd_to_nano
from billing.ratelimit import WINDOW_SECONDS, Limit
from gateway_platform.redis_clients import Batch, async_client, async_script, sync_script

logger = logging.getLogger(__name__)

ADMITTED, RATE_LIMITED, UNSEEDED, OVER_BUDGET = 1, 0, 2, 3

# KEYS: n rate-limit bases, then m budget hashes, then optionally the in-flight hash (``billing.inflight``).
# ARGV: window, n, m, reservation id, reservation ttl, (limit, cost) * n, (cap, amount, expire_at) * m,
#       then with the in-flight hash: its field (the request id) and the in-flight record.
# Returns {1, left...} | {0, i, retry_after, left...} | {2, j...} | {3, j, settled, reserved, left...}.
_ADMIT = """
local window, n, m = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rid, ttl = ARGV[4], tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local w = math.floor(now / window)
local weight = 1 - (now - w * window) / window
local left, refused = {}, 0
for i = 1, n do
  local limit, cost = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  local cur = tonumber(redis.call('GET', KEYS[i] .. ':' .. w) or '0')
  local prev = tonumber(redis.call('GET', KEYS[i] .. ':' .. (w - 1)) or '0')
  local used = prev * weight + cur
  if limit > 0 and used + cost > limit and refused == 0 then refused = i end
  left[i] = limit - used
end
local function tail(out, charged)
  for i = 1, n do
    local cost = charged and tonumber(ARGV[5 + 2 * i]) or 0
    out[#out + 1] = math.max(0, math.floor(left[i] - cost))
  end
  return out
end
if refused > 0 then return tail({0, refused, math.max(1, math.ceil(window * weight))}, false) end
local base = 5 + 2 * n
local settled, reserved, missing = {}, {}, {}
for j = 1, m do
  local k = KEYS[n + j]
  local expired = redis.call('ZRANGEBYSCORE', k .. ':r', '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do
    local amt = redis.call('HGET', k, 'q:' .. id)
    if amt then
      redis.call('HINCRBY', k, 'r', -tonumber(amt))
      redis.call('HDEL', k, 'q:' .. id)
    end
    redis.call('ZREM', k .. ':r', id)
  end
  local v = redis.call('HMGET', k, 's', 'r')
  if not v[1] then missing[#missing + 1] = j end
  settled[j], reserved[j] = tonumber(v[1] or '0'), tonumber(v[2] or '0')
end
if #missing > 0 then return {2, unpack(missing)} end
for j = 1, m do
  if settled[j] + reserved[j] + tonumber(ARGV[base + 3 * j - 1]) > tonumber(ARGV[base + 3 * j - 2]) then
    return tail({3, j, settled[j], reserved[j]}, false)
  end
end
for i = 1, n do
  local cost = tonumber(ARGV[5 + 2 * i])
  if cost > 0 and redis.call('INCRBY', KEYS[i] .. ':' .. w, cost) == cost then
    redis.call('EXPIRE', KEYS[i] .. ':' .. w, window * 2)  -- the first charge of this window created it
  end
end
for j = 1, m do
  local k, amt, expire_at = KEYS[n + j], ARGV[base + 3 * j - 1], tonumber(ARGV[base + 3 * j])
  redis.call('HINCRBY', k, 'r', amt)
  redis.call('HSET', k, 'q:' .. rid, amt)
  redis.call('ZADD', k .. ':r', now + ttl, rid)
  if expire_at > 0 then redis.call('EXPIREAT', k .. ':r', expire_at) end
end
if #KEYS > n + m then
  redis.call('HSET', KEYS[n + m + 1], ARGV[base + 3 * m + 1], ARGV[base + 3 * m + 2])
end
return tail({1}, true)
"""

# KEYS: p token-limit bases, then m budget hashes. ARGV: window, p, m, reservation id, tokens, actual * m.
# Returns the settled total of each budget after settling (-1: period not seeded).
_SETTLE = """
local window, p, m = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rid, tokens = ARGV[4], tonumber(ARGV[5])
if tokens > 0 then
  local w = math.floor(tonumber(redis.call('TIME')[1]) / window)
  for i = 1, p do
    if redis.call('INCRBY', KEYS[i] .. ':' .. w, tokens) == tokens then
      redis.call('EXPIRE', KEYS[i] .. ':' .. w, window * 2)
    end
  end
end
local out = {}
for j = 1, m do
  local k = KEYS[p + j]
  local amt = redis.call('HGET', k, 'q:' .. rid)
  if amt then
    redis.call('HINCRBY', k, 'r', -tonumber(amt))
    redis.call('HDEL', k, 'q:' .. rid)
    redis.call('ZREM', k .. ':r', rid)
  end
  local actual = ARGV[5 + j]
  if tonumber(actual) > 0 and redis.call('HEXISTS', k, 's') == 1 then
    out[j] = redis.call('HINCRBY', k, 's', actual)
  else
    out[j] = tonumber(redis.call('HGET', k, 's') or '-1')
  end
end
return out
"""

# KEYS: a budget hash. ARGV: settled nano-USD, expire_at. Seeds only an unseeded period.
_SEED = """
if redis.call('HSETNX', KEYS[1], 's', ARGV[1]) == 1 and tonumber(ARGV[2]) > 0 then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
return redis.call('HGET', KEYS[1], 's')
"""

# KEYS: a budget hash. ARGV: nano-USD to add to a seeded period (reconciliation).
_ADD = """
if redis.call('HEXISTS', KEYS[1], 's') == 1 then return redis.call('HINCRBY', KEYS[1], 's', ARGV[1]) end
return -1
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``reserve`` decided."""

    outcome: int  # ADMITTED, RATE_LIMITED or OVER_BUDGET
    reservation: str
    remaining: tuple[int, ...]  # per rate limit, after this request when admitted
    retry_after: int = 0
    refused: int = -1  # index of the refusing limit or budget claim
    settled: int = 0  # of the refusing budget, nano-USD
    reserved: int = 0


def _ttl() -> int:
    return int(settings.GATEWAY["BUDGET_RESERVATION_TTL_SECONDS"])


@dataclass(frozen=True, slots=True)
class Admission:
    """One admission call's Redis keys and arguments, to run alone (``reserve``) or in a ``Batch``."""

    reservation: str
    keys: tuple[str, ...]
    args: tuple[int | str | bytes, ...]
    claims: tuple[BudgetClaim, ...]


# Given the reservation id: the in-flight hash and the record admission writes there when it admits.
Tracking = Callable[[str], tuple[str, bytes]]


def admission(
    rates: Sequence[Limit], claims: Sequence[BudgetClaim], *, request_id: str, track: Tracking | None = None
) -> Admission:
    """The admission call for these limits and claims.

    ``track``: also write the request's in-flight record (``billing.inflight``) if it is admitted.
    """
    # A reservation id of our own: a client-chosen X-Request-Id must not collide with another request's.
    reservation = f"{request_id}.{secrets.token_hex(4)}"
    keys = [f"rl:{limit.name}" for limit in rates] + [claim.key for claim in claims]
    args: list[int | str | bytes] = [WINDOW_SECONDS, len(rates), len(claims), reservation, _ttl()]
    for limit in rates:
        args.extend((limit.limit, limit.cost))
    for claim in claims:
        args.extend((claim.cap, claim.amount, claim.expire_at))
    if track is not None:
        hash_key, record = track(reservation)
        keys.append(hash_key)
        args.extend((request_id, record))
    return Admission(reservation, tuple(keys), tuple(args), tuple(claims))


def queue_admission(batch: Batch, call: Admission) -> int:
    """Queue the admission script in ``batch``; returns the index of its result (see ``verdict``)."""
    return batch.script(_ADMIT, call.keys, call.args)


def verdict(call: Admission, raw: Sequence[Any]) -> Verdict | None:
    """The verdict of the admission script's result; None when a budget period must be seeded first."""
    result = [int(x) for x in raw]
    if result[0] == UNSEEDED:
        return None
    if result[0] == RATE_LIMITED:
        return Verdict(RATE_LIMITED, call.reservation, tuple(result[3:]), retry_after=result[2], refused=result[1] - 1)
    if result[0] == OVER_BUDGET:
        return Verdict(
            OVER_BUDGET,
            call.reservation,
            tuple(result[4:]),
            refused=result[1] - 1,
            settled=result[2],
            reserved=result[3],
        )
    return Verdict(ADMITTED, call.reservation, tuple(result[1:]))


async def reserve(rates: Sequence[Limit], claims: Sequence[BudgetClaim], *, request_id: str) -> Verdict:
    """Charge every rate limit and reserve every claim, or nothing; seeds unseeded budget periods first."""
    return await run_admission(admission(rates, claims, request_id=request_id))


async def run_admission(call: Admission, first: Sequence[Any] | None = None) -> Verdict:
    """Run the admission call (``first``: a result already obtained in a batch), seeding periods as needed."""
    raw = first
    for _ in range(3):
        if raw is None:
            raw = await async_script(_ADMIT)(keys=list(call.keys), args=list(call.args))
        found = verdict(call, raw)
        if found is not None:
            return found
        await seed([call.claims[int(j) - 1] for j in list(raw)[1:]])
        raw = None
    raise RuntimeError("budget periods could not be seeded")  # they vanished again between seed and admit


def _settle_call(
    reservation: str, claims: Sequence[BudgetClaim], actual: Sequence[int], *, token_limits: Sequence[str], tokens: int
) -> tuple[list[str], list[int | str]]:
    keys = [f"rl:{name}" for name in token_limits] + [claim.key for claim in claims]
    args: list[int | str] = [WINDOW_SECONDS, len(token_limits), len(claims), reservation, max(0, tokens), *actual]
    return keys, args


async def settle(
    reservation: str, claims: Sequence[BudgetClaim], actual: Sequence[int], *, token_limits: Sequence[str], tokens: int
) -> list[int]:
    """Replace each claim's reservation by ``actual`` nano-USD and charge ``tokens`` to the token limits."""
    keys, args = _settle_call(reservation, claims, actual, token_limits=token_limits, tokens=tokens)
    return [int(x) for x in await async_script(_SETTLE)(keys=keys, args=args)]


def queue_settle(
    batch: Batch,
    reservation: str,
    claims: Sequence[BudgetClaim],
    actual: Sequence[int],
    *,
    token_limits: Sequence[str],
    tokens: int,
) -> int:
    """``settle`` queued in ``batch`` (sent with the usage record); returns the index of its result."""
    keys, args = _settle_call(reservation, claims, actual, token_limits=token_limits, tokens=tokens)
    return batch.script(_SETTLE, keys, args)


def _seed_values(claims: Sequence[BudgetClaim]) -> list[int]:
    from billing.spend import budget_spend

    now = timezone.now()
    try:
        return [usd_to_nano(budget_spend(budget=c.budget, period=c.period, now=now)) for c in claims]
    finally:
        connection.close()  # hand the pooled connection back: this runs in an executor thread


async def seed(claims: Sequence[BudgetClaim]) -> None:
    """Seed unseeded budget periods with the spend PostgreSQL knows (first request of a period, or lost Redis)."""
    values = await sync_to_async(_seed_values, thread_sensitive=False)(claims)
    pipe = async_client().pipeline(transaction=False)
    for claim, value in zip(claims, values, strict=True):
        pipe.eval(_SEED, 1, claim.key, value, claim.expire_at)
    await pipe.execute()
    logger.info(
        "budget periods seeded from PostgreSQL",
        extra={"budgets": [c.budget.id for c in claims], "settled_nano": values},
    )


def seed_sync(claim: BudgetClaim, value: int) -> int:
    """Seed one period from a Celery task or command; returns the settled value now in Redis."""
    return int(sync_script(_SEED)(keys=[claim.key], args=[value, claim.expire_at]))


def add_settled_sync(key: str, nano: int) -> int:
    """Add ``nano`` to a seeded period's settled spend (reconciliation); -1 if it is not seeded."""
    return int(sync_script(_ADD)(keys=[key], args=[nano]))

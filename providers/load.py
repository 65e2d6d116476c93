"""Deployment load shared by every process through Redis: requests in flight and recent time to first token.

Only deployments of tier positions balanced by ``least-busy`` or ``latency``
(``routing.balancing``) are tracked, so routes without them cost no Redis
command here.

- In flight: a sorted set ``lb:busy:<deployment>`` of request ids scored by
  start time. ``choose_least_busy`` counts the candidates and adds the request
  to the one with the fewest per unit of weight in one Lua call, so concurrent
  requests in any process never pick on the same stale count. The request is
  removed with its usage record (``queue_marks``, same round trip); an entry
  older than ``BALANCE_IN_FLIGHT_MAX_SECONDS`` (its process died) is dropped
  when counted.
- Latency: ``lb:ttft:<deployment>`` holds an exponentially weighted moving
  average of time to first token in milliseconds, expiring
  ``BALANCE_LATENCY_WINDOW_SECONDS`` after its last sample: a deployment that
  stopped getting traffic is then "unmeasured" and tried again.

Like the circuit breakers, everything fails open: without Redis the caller
routes on weights alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from redis.exceptions import RedisError

from gateway_platform.redis_clients import Batch, sync_client
from providers import circuit
from providers.circuit import Permit

logger = logging.getLogger(__name__)

LATENCY_ALPHA = 0.3  # weight of a new sample in the moving average

# KEYS: in-flight sets; the first ``ARGV[3]`` are the candidates (in tie-break order), the rest only counted.
# ARGV: max age (s), request id, candidate count, candidate weights... Returns {chosen index (1-based), counts...}.
_CHOOSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local max_age = tonumber(ARGV[1])
local candidates = tonumber(ARGV[3])
local result = {0}
local best_score = nil
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - max_age)
  local n = redis.call('ZCARD', key)
  result[i + 1] = n
  if i <= candidates then
    local score = n / tonumber(ARGV[3 + i])
    if best_score == nil or score < best_score then result[1], best_score = i, score end
  end
end
if result[1] > 0 then
  redis.call('ZADD', KEYS[result[1]], now, ARGV[2])
  redis.call('EXPIRE', KEYS[result[1]], math.ceil(max_age))
end
return result
"""

# KEYS[1] the moving average. ARGV: sample (ms), alpha, window (s). Returns the new average.
_SAMPLE = """
local previous = tonumber(redis.call('GET', KEYS[1]) or '')
local sample = tonumber(ARGV[1])
local value = sample
if previous then value = previous + tonumber(ARGV[2]) * (sample - previous) end
redis.call('SET', KEYS[1], tostring(value), 'EX', ARGV[3])
return tostring(value)
"""


def busy_key(deployment: str) -> str:
    return f"lb:busy:{deployment}"


def latency_key(deployment: str) -> str:
    return f"lb:ttft:{deployment}"


@dataclass(slots=True)
class Mark:
    """What a request left to report about one deployment: an in-flight entry and/or a latency timing."""

    deployment: str
    busy: bool = False  # the request is counted in the deployment's in-flight set
    started: float | None = None  # monotonic start of a timed attempt (``latency``)
    seconds: float | None = None  # set when the attempt failed: how long it took to fail


@dataclass(frozen=True, slots=True)
class LeastBusy:
    """``choose_least_busy``'s answer: the candidate the request was counted on, and every count read."""

    chosen: str | None
    in_flight: dict[str, int]
    # Breakers of the candidates found closed, read in the same round trip (``circuit.peeked_permit``).
    permits: dict[str, Permit] = field(default_factory=dict)


def _peeked(batch_results: list[object], at: dict[str, int]) -> dict[str, Permit]:
    permits = {name: circuit.peeked_permit(batch_results[index]) for name, index in at.items()}
    return {name: permit for name, permit in permits.items() if permit is not None}


async def choose_least_busy(
    candidates: Sequence[tuple[str, int]], others: Sequence[str], request_id: str
) -> LeastBusy | None:
    """Count ``candidates`` and ``others`` in flight; add ``request_id`` to the least busy candidate per weight.

    ``candidates`` come in tie-break order (the first of equal scores wins). Their breakers are read
    in the same round trip, so the chosen one needs no call of its own. None if Redis failed.
    """
    names = [name for name, _ in candidates] + list(others)
    max_age = float(settings.GATEWAY["BALANCE_IN_FLIGHT_MAX_SECONDS"])
    args: list[str | int | float] = [max_age, request_id, len(candidates), *(max(1, w) for _, w in candidates)]
    batch = Batch()
    chosen_at = batch.script(_CHOOSE, [busy_key(name) for name in names], args)
    peeks = {name: circuit.queue_peek(batch, name) for name, _ in candidates}
    try:
        results = await batch.execute()
        raw = results[chosen_at]
        if isinstance(raw, Exception):
            raise raw
    except RedisError:
        logger.warning("deployment load unavailable; balancing by weight")
        return None
    index = int(raw[0])
    counts = {name: int(count) for name, count in zip(names, raw[1:], strict=True)}
    return LeastBusy(chosen=names[index - 1] if index > 0 else None, in_flight=counts, permits=_peeked(results, peeks))


async def latencies(names: Sequence[str]) -> tuple[dict[str, float | None], dict[str, Permit]] | None:
    """Recent time to first token (ms) of each deployment (None without a recent sample), and the
    breakers found closed, read in one round trip. None if Redis failed.
    """
    batch = Batch()
    read_at = batch.command("MGET", *(latency_key(name) for name in names))
    peeks = {name: circuit.queue_peek(batch, name) for name in names}
    try:
        results = await batch.execute()
        raw = results[read_at]
        if isinstance(raw, Exception):
            raise raw
    except RedisError:
        logger.warning("deployment latencies unavailable; balancing by weight")
        return None
    measured = {name: (float(value) if value is not None else None) for name, value in zip(names, raw, strict=True)}
    return measured, _peeked(results, peeks)


def queue_marks(batch: Batch, marks: Sequence[Mark], request_id: str, *, first_token: float | None, now: float) -> None:
    """Queue the release of in-flight entries and the latency samples of ``marks`` in ``batch``.

    A timed attempt that did not fail counts its time to first token (``first_token``, when a
    stream's first chunk came during it) or else its whole duration until ``now``.
    """
    window = max(1, math.ceil(float(settings.GATEWAY["BALANCE_LATENCY_WINDOW_SECONDS"])))
    for mark in marks:
        if mark.busy:
            batch.command("ZREM", busy_key(mark.deployment), request_id)
        if mark.started is None:
            continue
        seconds = mark.seconds
        if seconds is None:
            end = first_token if first_token is not None and first_token >= mark.started else now
            seconds = end - mark.started
        batch.script(_SAMPLE, [latency_key(mark.deployment)], [round(seconds * 1000, 3), LATENCY_ALPHA, window])


def snapshot_now(names: Sequence[str]) -> dict[str, tuple[int | None, float | None]]:
    """Requests in flight and recent time to first token (ms) per deployment, read synchronously (admin pages).

    Entries of lost requests (older than the in-flight bound) are not counted. Empty if Redis failed.
    """
    max_age = float(settings.GATEWAY["BALANCE_IN_FLIGHT_MAX_SECONDS"])
    try:
        client = sync_client()
        now = float(client.time()[0])
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.zcount(busy_key(name), now - max_age, "+inf")
            pipe.get(latency_key(name))
        raw = pipe.execute()
    except RedisError:
        logger.warning("deployment load unavailable for the admin")
        return {}
    return {
        name: (int(raw[2 * i]), float(raw[2 * i + 1]) if raw[2 * i + 1] is not None else None)
        for i, name in enumerate(names)
    }

"""Circuit breakers per deployment, shared by every process through Redis.

State lives only in Redis (hash ``cb:<deployment>``): ``closed`` counts
consecutive failures and opens after ``threshold``; ``open`` refuses traffic
until ``reset_seconds`` have passed; then one caller at a time gets through as
the half-open probe, and its success closes the circuit (its failure re-opens
it). All transitions are Lua scripts, so processes never disagree. If Redis
itself fails, breakers fail open: routing continues as if all were closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from gateway_platform.redis_clients import Batch, async_script, sync_client, sync_script

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

# KEYS[1] breaker hash. ARGV: reset_seconds. Returns {allowed, state, retry_after, failures}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 'closed', 0, tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')} end
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
local reset = tonumber(ARGV[1])
if state == 'open' then
  if now - opened < reset then return {0, 'open', math.ceil(reset - (now - opened)), 0} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_at', tostring(now))
  return {1, 'half_open', 0, 0}
end
-- half_open: one probe at a time; a probe that never reported back frees the slot after `reset`.
local probe_at = tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0')
if now - probe_at >= reset then
  redis.call('HSET', KEYS[1], 'probe_at', tostring(now))
  return {1, 'half_open', 0, 0}
end
return {0, 'half_open', math.ceil(reset - (now - probe_at)), 0}
"""

# KEYS[1] breaker hash. ARGV: threshold. Returns the new state.
_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HINCRBY', KEYS[1], 'total_failures', 1)
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now))
  return 'open'
end
return state
"""

_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
return state
"""


# KEYS[1] breaker hash. ARGV: reset_seconds. Closes a circuit whose open window is over; returns 1 if it did.
_PROBE_SUCCESS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
if state == 'half_open' or (state == 'open' and now - opened >= tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Permit:
    allowed: bool
    state: str
    retry_after: int = 0
    failures: int = 0

    @property
    def needs_success_report(self) -> bool:
        """Only a success that changes something costs a Redis call."""
        return self.state != CLOSED or self.failures > 0


def _key(deployment: str) -> str:
    return f"cb:{deployment}"


def _threshold() -> int:
    return int(settings.GATEWAY["CIRCUIT_FAILURES"])


def _reset_seconds() -> float:
    return float(settings.GATEWAY["CIRCUIT_RESET_SECONDS"])


async def acquire(deployment: str) -> Permit:
    """May a request go to ``deployment`` now? (Half-open lets exactly one through.)"""
    try:
        allowed, state, retry_after, failures = await async_script(_ACQUIRE)(
            keys=[_key(deployment)], args=[_reset_seconds()]
        )
    except RedisError:
        logger.warning("circuit state unavailable; failing open", extra={"deployment": deployment})
        return Permit(True, CLOSED)
    return Permit(bool(int(allowed)), _text(state), int(retry_after), int(failures))


def queue_peek(batch: Batch, deployment: str) -> int:
    """Queue a read of the breaker's state in ``batch`` (read-only); see ``peeked_permit``."""
    return batch.command("HMGET", _key(deployment), "state", "failures")


def peeked_permit(raw: object) -> Permit | None:
    """The permit a peeked closed breaker gives (``acquire`` of a closed breaker writes nothing).

    None when the breaker is not closed (or the read failed): ``acquire`` decides then.
    """
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        return None
    state, failures = raw
    if state is not None and _text(state) != CLOSED:
        return None
    return Permit(True, CLOSED, 0, int(failures or 0))


async def record_failure(deployment: str) -> str:
    """Count a failure; returns the state afterwards (``open`` when it tripped)."""
    try:
        state = _text(await async_script(_FAILURE)(keys=[_key(deployment)], args=[_threshold()]))
    except RedisError:
        return CLOSED
    if state == OPEN:
        logger.warning("circuit opened", extra={"deployment": deployment})
    return state


async def record_success(deployment: str) -> None:
    """Close the circuit (a half-open probe succeeded, or any success in closed state)."""
    try:
        previous = _text(await async_script(_SUCCESS)(keys=[_key(deployment)]))
    except RedisError:
        return
    if previous != CLOSED:
        logger.info("circuit closed", extra={"deployment": deployment})


def state_of(deployment: str) -> str:
    """The current state, for the admin and metrics (synchronous)."""
    try:
        value = sync_client().hget(_key(deployment), "state")
    except RedisError:
        return CLOSED
    return _text(value) if value else CLOSED


def reset(deployment: str) -> None:
    """Force a circuit closed (admin action)."""
    sync_client().delete(_key(deployment))


def record_failure_sync(deployment: str) -> str:
    """``record_failure`` for synchronous callers (health probes)."""
    return _text(sync_script(_FAILURE)(keys=[_key(deployment)], args=[_threshold()]))


def record_success_sync(deployment: str) -> None:
    sync_script(_SUCCESS)(keys=[_key(deployment)])


def record_probe_success_sync(deployment: str) -> bool:
    """A health probe succeeded: close the circuit only if its open window is over.

    A probe never cuts an open window short: the provider answering "list
    models" does not prove that chat requests work again.
    """
    return bool(sync_script(_PROBE_SUCCESS)(keys=[_key(deployment)], args=[_reset_seconds()]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

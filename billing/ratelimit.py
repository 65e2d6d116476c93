"""Requests- and tokens-per-minute limits shared by every process through Redis.

A sliding-window counter: the current minute's count plus the previous
minute's weighted by how much of it still lies in the window. One Lua script
checks and charges every scope at once against Redis's own clock, so two
processes can never both take the last slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway_platform.redis_clients import async_script

WINDOW_SECONDS = 60

# KEYS: one base name per limit. ARGV: window, then (limit, cost) per limit; limit 0 = unlimited.
# Returns {1, 0, remaining...} when admitted, {0, retry_after} when refused (nothing charged).
_CHECK = """
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local w = math.floor(now / window)
local weight = 1 - (now - w * window) / window
local remaining = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local cost = tonumber(ARGV[2 * i + 1])
  local cur = tonumber(redis.call('GET', KEYS[i] .. ':' .. w) or '0')
  local prev = tonumber(redis.call('GET', KEYS[i] .. ':' .. (w - 1)) or '0')
  local used = prev * weight + cur
  if limit > 0 and used + cost > limit then
    return {0, math.ceil(window * weight)}
  end
  remaining[i] = math.max(0, math.floor(limit - used - cost))
end
local out = {1, 0}
for i = 1, #KEYS do
  local cost = tonumber(ARGV[2 * i + 1])
  if cost > 0 then
    redis.call('INCRBY', KEYS[i] .. ':' .. w, cost)
    redis.call('EXPIRE', KEYS[i] .. ':' .. w, window * 2)
  end
  out[#out + 1] = remaining[i]
end
return out
"""

_CHARGE = """
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local w = math.floor(tonumber(t[1]) / window)
redis.call('INCRBY', KEYS[1] .. ':' .. w, ARGV[2])
redis.call('EXPIRE', KEYS[1] .. ':' .. w, window * 2)
return 1
"""


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # e.g. "key:42:tpm"
    limit: int  # 0 = unlimited
    cost: int


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int
    remaining: tuple[int, ...]


async def check(limits: list[Limit]) -> Decision:
    """Charge every limit or none."""
    args: list[int] = [WINDOW_SECONDS]
    for limit in limits:
        args.extend((limit.limit, limit.cost))
    result = await async_script(_CHECK)(keys=[f"rl:{limit.name}" for limit in limits], args=args)
    if not int(result[0]):
        return Decision(False, max(int(result[1]), 1), ())
    return Decision(True, 0, tuple(int(r) for r in result[2:]))


async def charge(name: str, amount: int) -> None:
    """Add usage known only afterwards (completion tokens) to the current window."""
    if amount > 0:
        await async_script(_CHARGE)(keys=[f"rl:{name}"], args=[WINDOW_SECONDS, amount])

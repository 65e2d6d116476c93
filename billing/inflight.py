"""In-flight records: what a request that dies with its gateway process is billed on.

A usage record is queued when a request ends (``billing.usage``). A gateway
process that is killed (SIGKILL, OOM, a server stopped without waiting) never
gets there for the requests it had in flight, although the provider charges
them. So admission writes an **in-flight record** for each admitted request,
inside the admission script itself (``billing.enforcement``: no extra Redis
round trip, and only when the request is admitted), into its process's hash
``gateway:inflight:<owner>``; the request's last round trip removes it right
after queueing the usage record (``queue_clear``).

Each process refreshes ``gateway:alive:<owner>`` every
``GATEWAY_INFLIGHT_HEARTBEAT_SECONDS`` from a daemon thread (three beats
missed: dead). ``reap`` (a Celery beat task and ``manage.py reap_in_flight``)
bills every in-flight record whose process is dead, or that is older than
``GATEWAY_INFLIGHT_MAX_SECONDS`` (its removal was lost, e.g. Redis was down at
the end), by estimate: the prompt-token estimate at the first deployment's
input price, no completion tokens, status 499 ``gateway_lost``,
``tokens_estimated``. One Lua call removes the record only if it is unchanged,
settles its budget reservation to the estimate (if the reservation is still
held) and queues the usage record: two reapers cannot both bill it, and a late
answer of the process adds at most a second record with the same request id,
which the drain ignores (the first one queued is stored). A record whose
request already has a ``UsageEvent`` is removed without billing.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import redis
from django.conf import settings
from prometheus_client import Counter

from billing.budgets import usd_to_nano
from billing.records import FIELD_NAMES, InvalidRecord, UsageRecord, record_from_fields
from gateway_platform.redis_clients import Batch, sync_client, sync_script

logger = logging.getLogger(__name__)

OWNERS = "gateway:inflight:owners"
LOST = "gateway_lost"
LOST_STATUS = 499

REAPED = Counter(
    "gateway_inflight_reaped_total",
    "In-flight records of requests whose gateway process died, by outcome (billed by estimate, or already billed).",
    ["outcome"],
)

# KEYS: the owner's hash, the usage stream, then m budget hashes.
# ARGV: request id, the record as read, the usage payload, reservation id, then nano-USD per budget.
# Returns 1 when this call billed it, 0 when the record had changed or gone (billed elsewhere).
_REAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local rid = ARGV[4]
for j = 3, #KEYS do
  local k = KEYS[j]
  local amt = redis.call('HGET', k, 'q:' .. rid)
  if amt then
    redis.call('HINCRBY', k, 'r', -tonumber(amt))
    redis.call('HDEL', k, 'q:' .. rid)
    redis.call('ZREM', k .. ':r', rid)
    local actual = tonumber(ARGV[2 + j])
    if actual > 0 and redis.call('HEXISTS', k, 's') == 1 then redis.call('HINCRBY', k, 's', actual) end
  end
end
if ARGV[3] ~= '' then redis.call('XADD', KEYS[2], '*', 'e', ARGV[3]) end
return 1
"""


def owner_key(owner: str) -> str:
    """The hash of one process's in-flight records (field: request id)."""
    return f"gateway:inflight:{owner}"


def alive_key(owner: str) -> str:
    return f"gateway:alive:{owner}"


def heartbeat_seconds() -> float:
    return float(settings.GATEWAY["INFLIGHT_HEARTBEAT_SECONDS"])


def dead_after_seconds() -> float:
    """A process whose heartbeat is older than this is dead (three beats missed)."""
    return 3 * heartbeat_seconds()


# -- the gateway process's side -----------------------------------------------------------------

_lock = threading.Lock()
_owner: tuple[int, str] | None = None  # (pid, owner id): a forked child gets its own


def owner() -> str:
    """This process's owner id, its heartbeat thread started on first use."""
    global _owner
    pid = os.getpid()
    if _owner is not None and _owner[0] == pid:
        return _owner[1]
    with _lock:
        if _owner is None or _owner[0] != pid:
            name = f"{socket.gethostname()}-{pid}-{secrets.token_hex(3)}"
            _owner = (pid, name)
            threading.Thread(target=_beat_forever, args=(name,), name="inflight-heartbeat", daemon=True).start()
    return _owner[1]


def beat(owner_id: str) -> None:
    """Mark ``owner_id`` alive for three heartbeats and listed among the owners."""
    ttl = max(1, round(dead_after_seconds() * 1000))
    pipe = sync_client().pipeline(transaction=False)
    pipe.set(alive_key(owner_id), "1", px=ttl)
    pipe.sadd(OWNERS, owner_id)
    pipe.execute()


def _beat_forever(owner_id: str) -> None:
    while True:
        try:
            beat(owner_id)
        except Exception as exc:  # Redis down: records cannot be written either; beat again later
            logger.warning("in-flight heartbeat failed: %s", exc.__class__.__name__)
        time.sleep(heartbeat_seconds())


def payload(
    *,
    fields: dict[str, Any],
    reservation: str,
    budgets: Sequence[tuple[str, str]],
    prompt_tokens: int,
    cost_usd: Decimal,
) -> bytes:
    """The in-flight record: the usage record's fields known at admission, and what settles its reservation.

    ``budgets``: ``(budget hash, model)`` of each claim (a per-model budget settles only for its model).
    """
    return orjson.dumps(
        {
            **fields,
            "prompt_tokens": prompt_tokens,
            "cost_usd": str(cost_usd),
            "reservation": reservation,
            "budgets": [list(b) for b in budgets],
        },
        default=str,
    )


def queue_clear(batch: Batch, hash_key: str, request_id: str) -> int:
    """Remove the request's in-flight record (queued after its usage record, in the same round trip)."""
    return batch.command("HDEL", hash_key, request_id)


# -- the reaper ---------------------------------------------------------------------------------


def lost_record(data: dict[str, Any], *, now: datetime) -> UsageRecord:
    """The usage record billed for an in-flight record whose process died: the estimate, status 499."""
    known = {name: value for name, value in data.items() if name in FIELD_NAMES}
    attempt = {"provider": known.get("provider", ""), "model": known.get("model", ""), "status": LOST_STATUS}
    return record_from_fields(
        {
            **known,
            "finished_at": now,
            "status_code": LOST_STATUS,
            "error_code": LOST,
            "completion_tokens": 0,
            "tokens_estimated": True,
            "attempts": [{**attempt, "error": LOST}],
        }
    )


def settled_nano(data: dict[str, Any], cost_usd: Decimal) -> list[int]:
    """Nano-USD each budget of the record settles to (0 on a per-model budget of another model)."""
    nano = usd_to_nano(cost_usd) if cost_usd > 0 else 0
    model = data.get("model", "")
    return [nano if not budget_model or budget_model == model else 0 for _, budget_model in data.get("budgets", [])]


@dataclass
class Reaped:
    """What one ``reap`` did."""

    billed: list[str] = field(default_factory=list)  # request ids billed by estimate
    already_billed: list[str] = field(default_factory=list)  # removed: their UsageEvent exists
    skipped: int = 0  # changed or removed meanwhile (another reaper, a late answer)
    unreadable: int = 0  # removed: not a record (its reservation released)
    owners_removed: int = 0


@dataclass(frozen=True)
class _Candidate:
    owner: str
    request_id: str
    raw: bytes
    data: dict[str, Any]


def _started(data: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(data["started_at"])).timestamp()
    except (KeyError, ValueError):
        return 0.0  # unreadable: old enough to reap


def candidates(client: redis.Redis, *, now: float) -> tuple[list[_Candidate], int]:
    """In-flight records to reap, and how many owners were forgotten (dead and empty)."""
    dead_after = dead_after_seconds()
    bound = float(settings.GATEWAY["INFLIGHT_MAX_SECONDS"])
    # Heartbeats expire while Redis is down: right after a restart every process looks dead until it beats again.
    restarted = int(client.info("server").get("uptime_in_seconds", 0)) < dead_after + 1
    found: list[_Candidate] = []
    removed = 0
    for raw_owner in sorted(client.smembers(OWNERS)):
        name = raw_owner.decode() if isinstance(raw_owner, bytes) else str(raw_owner)
        alive = restarted or bool(client.exists(alive_key(name)))
        entries = client.hgetall(owner_key(name))
        if not entries and not alive:
            client.srem(OWNERS, name)
            removed += 1
            continue
        for raw_id, raw in entries.items():
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = {}
            age = now - _started(data)
            # A new process may write before its first heartbeat lands: only records older than that count.
            if (not alive and age > dead_after) or age > bound:
                request_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                found.append(_Candidate(name, request_id, raw, data))
    return found, removed


def _stored(request_ids: Iterable[str]) -> set[str]:
    from billing.models import UsageEvent

    return set(UsageEvent.objects.filter(request_id__in=list(request_ids)).values_list("request_id", flat=True))


def reap(*, now: datetime | None = None) -> Reaped:
    """Bill by estimate every in-flight record whose process died (or that outlived the bound); idempotent."""
    from billing.usage import STREAM

    client = sync_client()
    moment = now or datetime.now(UTC)
    found, removed = candidates(client, now=moment.timestamp())
    result = Reaped(owners_removed=removed)
    if not found:
        return result
    stored = _stored(c.request_id for c in found)
    script = sync_script(_REAP)
    for candidate in found:
        data = candidate.data
        record: UsageRecord | None = None
        unreadable = False
        if candidate.request_id not in stored:
            try:
                record = lost_record(data, now=moment)
            except InvalidRecord as exc:  # nothing to bill; the reservation is still released
                logger.error("unreadable in-flight record: %s", exc, extra={"request_id": candidate.request_id})
                unreadable = True
        cost = record.cost_usd if record is not None else Decimal(0)
        budgets = [str(b[0]) for b in data.get("budgets", [])]
        args = [
            candidate.request_id,
            candidate.raw,
            record.to_json() if record is not None else b"",
            str(data.get("reservation", "")),
            *settled_nano(data, cost),
        ]
        done = script(keys=[owner_key(candidate.owner), STREAM, *budgets], args=args)
        if not int(done):
            result.skipped += 1
        elif unreadable:
            result.unreadable += 1
        elif record is not None:
            result.billed.append(candidate.request_id)
            REAPED.labels("estimated").inc()
            logger.warning(
                "in-flight request of a dead gateway process billed by estimate",
                extra={"request_id": candidate.request_id, "owner": candidate.owner, "cost_usd": str(cost)},
            )
        else:
            result.already_billed.append(candidate.request_id)
            REAPED.labels("already_billed").inc()
    return result


def in_flight(client: redis.Redis | None = None) -> dict[str, int]:
    """In-flight records per owner (operators, tests)."""
    client = client or sync_client()
    counts = {}
    for raw_owner in client.smembers(OWNERS):
        name = raw_owner.decode() if isinstance(raw_owner, bytes) else str(raw_owner)
        counts[name] = int(client.hlen(owner_key(name)))
    return counts

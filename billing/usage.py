"""Lossless, asynchronous usage accounting.

The request path appends one JSON record per request to a Redis stream
(``record``) just before the answer's last bytes are sent (one Redis round
trip, see ``routing.consumers.base``): a client holding a whole answer implies
a queued record, even if the process is killed right after. Nothing waits on
PostgreSQL and nothing is held in process memory. ``drain`` (a Celery beat task) reads the
stream through a consumer group, writes batches idempotently on
``request_id`` and acknowledges only after the rows are committed: a crash at
any point re-delivers, never loses. If Redis is unreachable, records go to a
local spool file that ``drain`` replays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import transaction

from gateway_platform.redis_clients import async_client, sync_client

logger = logging.getLogger(__name__)

STREAM = "gateway:usage"
GROUP = "usage-writers"
CLAIM_IDLE_MS = 60_000


@dataclass(slots=True)
class UsageRecord:
    """One request's accounting, as produced on the hot path."""

    request_id: str
    endpoint: str
    started_at: datetime
    finished_at: datetime
    status_code: int
    tenant_id: int | None = None
    team_id: int | None = None
    api_key_id: int | None = None
    requested_model: str = ""
    tier: str = ""
    model: str = ""
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    prompt_cache_saved_usd: Decimal = Decimal(0)
    session: str = ""
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    ttft_ms: int | None = None
    error_code: str = ""
    cache_status: str = "BYPASS"
    stream: bool = False
    client_disconnected: bool = False
    attempts: list[dict[str, Any]] = field(default_factory=list)
    skill: str = ""
    route_reason: dict[str, Any] = field(default_factory=dict)
    tokens_saved: dict[str, int] = field(default_factory=dict)
    cost_saved_usd: Decimal = Decimal(0)
    cache_similarity: float | None = None
    budget_status: str = ""
    guardrail: str = ""

    def to_json(self) -> bytes:
        # orjson serialises dataclasses natively; asdict() would deep-copy every field first.
        return orjson.dumps(self, default=str)


def _spool_path() -> Path:
    spool: Path = settings.GATEWAY["USAGE_SPOOL_DIR"]
    return spool / f"usage-{socket.gethostname()}-{os.getpid()}.jsonl"


def _spool(payload: bytes) -> None:
    path = _spool_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(payload + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


async def record(usage: UsageRecord) -> None:
    """Queue one usage record (never raises: accounting must not break answers)."""
    payload = usage.to_json()
    try:
        await async_client().xadd(STREAM, {"e": payload})
    except (redis.RedisError, OSError):
        logger.warning("Redis unavailable; spooling usage record locally", extra={"request_id": usage.request_id})
        await asyncio.to_thread(_spool, payload)


def _event_fields(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    for name in ("cost_usd", "cost_saved_usd", "prompt_cache_saved_usd"):
        if name in data:
            data[name] = Decimal(data[name])
    return data


# Writers of rows derived from usage records (e.g. routing's cascade outcomes), run in the same
# transaction as the usage rows, so they are written exactly when their events are. Each must be
# idempotent: records are re-delivered after a crash. Apps register in ``AppConfig.ready``.
RecordWriter = Callable[[list[dict[str, Any]]], object]
_record_writers: list[RecordWriter] = []


def register_record_writer(writer: RecordWriter) -> None:
    """Also pass every batch of drained usage records to ``writer`` (inside the drain's transaction)."""
    if writer not in _record_writers:
        _record_writers.append(writer)


def write_events(records: list[dict[str, Any]]) -> int:
    """Insert records as ``UsageEvent`` rows, skipping request ids already stored."""
    from billing.models import UsageEvent
    from tenants.models import ApiKey

    if not records:
        return 0
    events = [UsageEvent(**_event_fields(r)) for r in records]
    with transaction.atomic():
        created = UsageEvent.objects.bulk_create(events, ignore_conflicts=True, batch_size=500)
        last_used: dict[int, datetime] = {}
        for event in events:
            if event.api_key_id is not None:
                ts = datetime.fromisoformat(str(event.started_at))
                last_used[event.api_key_id] = max(ts, last_used.get(event.api_key_id, ts))
        for key_id, ts in last_used.items():
            # Only ever move last_used_at forward, without a read-modify-write race.
            ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=ts).update(last_used_at=ts)
        for writer in _record_writers:
            writer(records)
    return len(created)


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _replay_spool() -> int:
    spool: Path = settings.GATEWAY["USAGE_SPOOL_DIR"]
    if not spool.exists():
        return 0
    total = 0
    for path in sorted(spool.glob("usage-*.jsonl")):
        claimed = path.with_suffix(".replaying")
        try:
            path.rename(claimed)  # atomic: one drainer owns the file
        except FileNotFoundError:
            continue
        records = [orjson.loads(line) for line in claimed.read_bytes().splitlines() if line.strip()]
        write_events(records)
        claimed.unlink()
        total += len(records)
    return total


def drain(*, batch_size: int = 1000, max_batches: int = 50) -> int:
    """Move queued usage records into PostgreSQL; returns how many were read."""
    client = sync_client()
    _ensure_group(client)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    total = _replay_spool()
    # Take over records a crashed drainer read but never acknowledged.
    # XAUTOCLAIM answers [next, entries] (Redis 6.2) or [next, entries, deleted] (7+).
    claimed = client.xautoclaim(STREAM, GROUP, consumer, min_idle_time=CLAIM_IDLE_MS, count=batch_size)[1]
    batches = [claimed] if claimed else []
    for _ in range(max_batches):
        if batches:
            entries = batches.pop()
        else:
            response = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=batch_size)
            entries = response[0][1] if response else []
        if not entries:
            break
        ids = [entry_id for entry_id, _ in entries]
        records = [orjson.loads(fields[b"e"]) for _, fields in entries if fields and b"e" in fields]
        write_events(records)
        pipe = client.pipeline()
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        total += len(entries)
    return total

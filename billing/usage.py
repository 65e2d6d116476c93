"""Lossless, asynchronous usage accounting.

The request path appends one JSON record per request to a Redis stream
(``record``) just before the answer's last bytes are sent (one Redis round
trip, see ``serving.consumers.base``): a client holding a whole answer implies
a queued record, even if the process is killed right after. Nothing waits on
PostgreSQL and nothing is held in process memory. ``drain`` (a Celery beat task) reads the
stream through a consumer group, writes batches idempotently on
``request_id`` and acknowledges only after the rows are committed: a crash at
any point re-delivers, never loses. If Redis is unreachable, records go to a
local spool file that ``drain`` replays.

No record can block another: records are normalised when built and again when
read (``billing.records``); a batch PostgreSQL still refuses is split in halves
down to the single record, and a record refused on its own moves to the
dead-letter stream (``billing.deadletter``) with its error, in the same Redis
transaction that acknowledges it, while every other record lands. Only an
unavailable database (``OperationalError``/``InterfaceError``) stops the drain,
leaving the batch unacknowledged for the next run.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from billing import deadletter
from billing.records import InvalidRecord, UsageRecord, event_fields, record_from_fields, record_from_payload
from gateway_platform.redis_clients import Batch, async_client, sync_client

logger = logging.getLogger(__name__)

__all__ = ["GROUP", "STREAM", "UsageRecord", "drain", "record", "register_record_writer", "write_events"]

STREAM = "gateway:usage"
GROUP = "usage-writers"
CLAIM_IDLE_MS = 60_000
# The database is unavailable: retry the whole batch later rather than dead-letter anything.
UNAVAILABLE = (OperationalError, InterfaceError)


def _spool_path() -> Path:
    spool: Path = settings.GATEWAY["USAGE_SPOOL_DIR"]
    return spool / f"usage-{socket.gethostname()}-{os.getpid()}.jsonl"


def _spool(payload: bytes) -> None:
    path = _spool_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "ab") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            # A drainer may have claimed (renamed) the file between open and lock: write to a fresh one.
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                continue
            fh.write(payload + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
            return


def spool_depth() -> int:
    """Usage records waiting in this node's spool (Redis was down when they were recorded)."""
    spool: Path = settings.GATEWAY["USAGE_SPOOL_DIR"]
    if not spool.exists():
        return 0
    total = 0
    for path in [*spool.glob("usage-*.jsonl"), *spool.glob("usage-*.replaying")]:
        try:
            with open(path, "rb") as fh:
                total += sum(1 for line in fh if line.strip())
        except FileNotFoundError:
            continue  # replayed meanwhile
    return total


async def record(usage: UsageRecord, *, batch: Batch | None = None, after: Sequence[tuple[Any, ...]] = ()) -> None:
    """Queue one usage record (never raises: accounting must not break answers).

    ``batch``: other commands to send in the same round trip (the request's budget
    settlement); their errors are logged, the record is spooled if Redis is unreachable.
    ``after``: commands sent after the record in that round trip (the removal of its
    in-flight record, ``billing.inflight``: a process killed mid-write never removes it first).
    """
    payload = usage.to_json()
    try:
        if not batch and not after:
            await async_client().xadd(STREAM, {"e": payload})
            return
        batch = batch if batch is not None else Batch()
        at = batch.command("XADD", STREAM, "*", "e", payload)
        for command in after:
            batch.command(*command)
        results = await batch.execute()
        for index, result in enumerate(results):
            if isinstance(result, Exception) and index != at:
                logger.error(
                    "a command sent with a usage record failed: %s", result, extra={"request_id": usage.request_id}
                )
        if isinstance(results[at], Exception):
            raise results[at]
    except (redis.RedisError, OSError):
        logger.warning("Redis unavailable; spooling usage record locally", extra={"request_id": usage.request_id})
        await asyncio.to_thread(_spool, payload)


# Writers of rows derived from usage records (e.g. routing's cascade outcomes), run in the same
# transaction as the usage rows, so they are written exactly when their events are. Each must be
# idempotent: records are re-delivered after a crash. Apps register in ``AppConfig.ready``.
RecordWriter = Callable[[list[dict[str, Any]]], object]
_record_writers: list[RecordWriter] = []


def register_record_writer(writer: RecordWriter) -> None:
    """Also pass every batch of drained usage records to ``writer`` (inside the drain's transaction)."""
    if writer not in _record_writers:
        _record_writers.append(writer)


def write_events(batch: Sequence[UsageRecord | Mapping[str, Any]]) -> int:
    """Insert records as ``UsageEvent`` rows in one transaction, skipping request ids already stored.

    Records may also be given as decoded fields (normalised here; ``InvalidRecord`` if they cannot be).
    """
    from billing.models import UsageEvent
    from tenants.models import ApiKey

    if not batch:
        return 0
    records = [r if isinstance(r, UsageRecord) else record_from_fields(r) for r in batch]
    rows = [event_fields(r) for r in records]
    events = [UsageEvent(**row) for row in rows]
    with transaction.atomic():
        created = UsageEvent.objects.bulk_create(events, ignore_conflicts=True, batch_size=500)
        last_used: dict[int, datetime] = {}
        for record in records:
            if record.api_key_id is not None:
                ts = record.started_at
                last_used[record.api_key_id] = max(ts, last_used.get(record.api_key_id, ts))
        for key_id, ts in last_used.items():
            # Only ever move last_used_at forward, without a read-modify-write race.
            ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=ts).update(last_used_at=ts)
        _mark_dirty_hours({r.started_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) for r in records})
        for writer in _record_writers:
            writer(rows)
    return len(created)


def _mark_dirty_hours(hours: set[datetime]) -> None:
    """Note the hours these events fall in, in the drain's transaction (``billing.rollups.rollup_dirty``)."""
    if not hours:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_rollupdirtyhour (hour, marked_at) SELECT h, now() FROM unnest(%s::timestamptz[]) h "
            "ON CONFLICT (hour) DO UPDATE SET marked_at = now()",
            [sorted(hours)],
        )


Queued = tuple[str, bytes]  # (where it came from: a stream entry id or a spool file, its payload)


def land(items: Sequence[Queued]) -> list[deadletter.DeadLetter]:
    """Write every storable record of ``items``; return those that are not, with their errors.

    Raises only when the database is unavailable (nothing can be judged then).
    """
    parsed: list[tuple[Queued, UsageRecord]] = []
    dead: list[deadletter.DeadLetter] = []
    for item in items:
        try:
            parsed.append((item, record_from_payload(item[1])))
        except InvalidRecord as exc:
            dead.append(deadletter.DeadLetter(source=item[0], payload=item[1], error=str(exc)))
    dead.extend(_write_splitting(parsed))
    return dead


def _write_splitting(batch: Sequence[tuple[Queued, UsageRecord]]) -> list[deadletter.DeadLetter]:
    if not batch:
        return []
    try:
        write_events([record for _, record in batch])
        return []
    except UNAVAILABLE:
        raise
    except Exception as exc:
        if len(batch) == 1:
            (source, payload), record = batch[0]
            error = f"{exc.__class__.__name__}: {exc}".strip()
            logger.error("usage record refused by the database; dead-lettered", extra={"request_id": record.request_id})
            return [deadletter.DeadLetter(source=source, payload=payload, error=error)]
    half = len(batch) // 2
    return _write_splitting(batch[:half]) + _write_splitting(batch[half:])


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _replay_spool(client: redis.Redis) -> int:
    spool: Path = settings.GATEWAY["USAGE_SPOOL_DIR"]
    if not spool.exists():
        return 0
    total = 0
    stale_before = time.time() - CLAIM_IDLE_MS / 1000
    # A file is claimed by renaming it; a claimed file left behind by a drainer that died is
    # taken over after the same idle time as stream entries (re-writing is idempotent).
    stranded = [p for p in spool.glob("usage-*.replaying") if p.stat().st_mtime < stale_before]
    for path in [*sorted(spool.glob("usage-*.jsonl")), *stranded]:
        claimed = path.with_suffix(".replaying")
        try:
            path.rename(claimed)  # atomic: one drainer owns the file
            os.utime(claimed)
        except FileNotFoundError:
            continue
        with open(claimed, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # wait for a writer that opened it before the rename
            lines = [line for line in fh.read().splitlines() if line.strip()]
        items = [(f"{claimed.name}:{n}", line) for n, line in enumerate(lines, 1)]
        deadletter.add(client, land(items))
        claimed.unlink()
        total += len(items)
    return total


def drain(*, batch_size: int = 1000, max_batches: int = 50) -> int:
    """Move queued usage records into PostgreSQL; returns how many were read."""
    client = sync_client()
    _ensure_group(client)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    total = _replay_spool(client)
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
        # An entry without fields was deleted after it was read (nothing to write); one without "e" is junk.
        items = [(_text_id(entry_id), fields.get(b"e", b"")) for entry_id, fields in entries if fields]
        dead = land(items)
        # Dead letters are added in the transaction that acknowledges: a record is in exactly one stream.
        pipe = client.pipeline(transaction=True)
        deadletter.add(pipe, dead)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        total += len(entries)
    return total


def _text_id(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id

"""The usage dead-letter stream: records PostgreSQL refused on their own, kept with their error.

A record lands here only after the drain split its batch down to that single
record (or could not decode it), so one bad record never holds back the others.
Nothing here is ever trimmed automatically: an operator reads the list (admin:
Usage events → "Dead letters", or ``manage.py usage_dead_letters``), fixes the
cause (a deploy, a migration) and re-drives; a re-driven record that lands is
removed, one that still fails stays with its new error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
from prometheus_client import Counter

logger = logging.getLogger(__name__)

DEAD_STREAM = "gateway:usage:dead"

DEAD_LETTERS = Counter(
    "gateway_usage_dead_letters_total", "Usage records moved to the dead-letter stream (refused on their own)."
)
REDRIVEN = Counter("gateway_usage_dead_letters_redriven_total", "Dead-lettered usage records re-driven and stored.")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record on its way to the dead-letter stream."""

    source: str  # the usage stream entry id, or spool file and line
    payload: bytes
    error: str


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """One entry of the dead-letter stream, as listed to an operator."""

    id: str
    at: str
    source: str
    error: str
    payload: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The record's decoded fields, or ``{}`` if it is not a JSON object."""
        try:
            data = orjson.loads(self.payload)
        except orjson.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def request_id(self) -> str:
        return str(self.fields.get("request_id", ""))

    @property
    def tenant_id(self) -> object:
        return self.fields.get("tenant_id")

    @property
    def payload_text(self) -> str:
        return self.payload.decode("utf-8", "replace")


def add(client: redis.Redis | redis.client.Pipeline, dead: Iterable[DeadLetter]) -> int:
    """Append dead letters (on a pipeline: inside the caller's transaction)."""
    count = 0
    now = datetime.now(UTC).isoformat()
    for letter in dead:
        client.xadd(
            DEAD_STREAM, {"e": letter.payload, "error": letter.error[:2000], "source": letter.source, "at": now}
        )
        logger.error(
            "usage record dead-lettered: %s", letter.error, extra={"source": letter.source, "error": letter.error}
        )
        count += 1
    if count:
        DEAD_LETTERS.inc(count)
    return count


def _text(fields: dict[bytes, bytes], name: bytes) -> str:
    return fields.get(name, b"").decode("utf-8", "replace")


def entries(client: redis.Redis, *, count: int = 200, ids: Iterable[str] | None = None) -> list[StoredDeadLetter]:
    """The oldest ``count`` dead letters (or exactly ``ids``)."""
    if ids is not None:
        rows = [row for entry_id in ids for row in client.xrange(DEAD_STREAM, entry_id, entry_id)]
    else:
        rows = client.xrange(DEAD_STREAM, count=count)
    return [
        StoredDeadLetter(
            id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            at=_text(fields, b"at"),
            source=_text(fields, b"source"),
            error=_text(fields, b"error"),
            payload=fields.get(b"e", b""),
        )
        for entry_id, fields in rows
    ]


def depth(client: redis.Redis) -> int:
    """How many records wait in the dead-letter stream."""
    return int(client.xlen(DEAD_STREAM))


@dataclass(frozen=True, slots=True)
class Redrive:
    landed: list[str]
    failed: dict[str, str]  # dead-letter id → the error now


def redrive(client: redis.Redis, *, ids: Iterable[str] | None = None, count: int = 1000) -> Redrive:
    """Try the dead letters again (after a fix); stored ones leave the stream, the rest stay.

    Each record is written on its own, idempotently on its request id, so a
    re-drive interrupted half-way can simply be run again.
    """
    from billing.usage import land  # the drain's own write path

    landed: list[str] = []
    failed: dict[str, str] = {}
    for letter in entries(client, count=count, ids=ids):
        [*still_dead] = land([(letter.source, letter.payload)])
        if still_dead:
            failed[letter.id] = still_dead[0].error
            continue
        client.xdel(DEAD_STREAM, letter.id)
        landed.append(letter.id)
    if landed:
        REDRIVEN.inc(len(landed))
        logger.info("re-drove %d dead-lettered usage records", len(landed))
    return Redrive(landed=landed, failed=failed)


def discard(client: redis.Redis, ids: Iterable[str]) -> int:
    """Delete dead letters for good (records that should never be billed)."""
    ids = list(ids)
    if not ids:
        return 0
    logger.warning("discarding %d dead-lettered usage records", len(ids), extra={"ids": ids})
    return int(client.xdel(DEAD_STREAM, *ids))

"""Storing an answer from the serving process: a few Redis commands; the row is written by a drain.

Every answer the response cache keeps is an exact-layer value in Redis and a ``CacheEntry`` row
in PostgreSQL (what the semantic layer searches, eviction counts and the admin lists). Written
from the serving process, the row cost a hop to a worker thread, a pooled connection and an
INSERT per answer (or per batch of answers): at one request at a time, nearly half of the
gateway's CPU per request (measured in the commit that added this module). Now the serving
process takes the entry's id from a block reserved from the table's sequence (one query per
``ID_BLOCK`` entries) and sends the exact-layer ``SET`` (it answers the next identical request
at once), the semantic scope marker and an ``XADD`` of the entry to ``QUEUE``: with the request's
own last round trip (``store_commands``) or, when the prompt had to be embedded first, in a batch
of their own (``store_entry``). ``drain`` (Celery beat, every ``GATEWAY_CACHE_DRAIN_SECONDS``) inserts
queued entries with those ids and ``ON CONFLICT DO NOTHING``: a drain that dies before it
deletes what it read, or two drains reading the same entries, store each entry once.

A semantic match therefore finds an answer once it has been drained (about a second), an exact
match at once. The queue is bounded (``GATEWAY_CACHE_QUEUE_MAX``, trimmed approximately):
without a worker the oldest queued entries are dropped rather than Redis filling up. The cache
is an optimisation; an entry lost is a miss later, never a wrong answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from caching import store
from caching.store import CachedAnswer, NewEntry
from gateway_platform.event_loops import per_event_loop
from gateway_platform.redis_clients import Batch, sync_client

logger = logging.getLogger(__name__)

QUEUE = "gwcache:entries"  # under the cache's key prefix: cleared with the exact layer
ID_BLOCK = 1000  # entry ids reserved per query
# The database is unavailable: leave the queue as it is for the next drain.
UNAVAILABLE = (OperationalError, InterfaceError)


class EntryIds:
    """Ids reserved from ``CacheEntry``'s sequence, handed out one per stored answer."""

    def __init__(self, block: int = ID_BLOCK) -> None:
        self._block = block
        self._ids: list[int] = []
        self._reserving = asyncio.Lock()
        self._refill: asyncio.Task[None] | None = None  # held: a task nobody references may be collected

    async def take(self) -> int:
        """The next reserved id (reserving a new block, in a worker thread, when none is left)."""
        if not self._ids:
            await self._reserve()
        return self._ids.pop()

    def take_nowait(self) -> int | None:
        """The next reserved id, or None when none is left (a new block is then reserved meanwhile)."""
        if self._ids:
            return self._ids.pop()
        if self._refill is None or self._refill.done():
            self._refill = asyncio.get_running_loop().create_task(self._reserve_in_background())
        return None

    async def _reserve_in_background(self) -> None:
        try:
            await self._reserve()
        except Exception:  # the database is away: answers are stored on their own until it is back
            logger.warning("response cache: could not reserve entry ids", exc_info=True)

    async def _reserve(self) -> None:
        async with self._reserving:
            if not self._ids:
                reserved = await sync_to_async(_reserve, thread_sensitive=False)(self._block)
                self._ids = reserved[::-1]  # popped from the end: handed out in sequence order


def _reserve(count: int) -> list[int]:
    try:
        return store.reserve_entry_ids(count)
    finally:
        store.release_connection()


@per_event_loop
def entry_ids() -> EntryIds:
    """The id reservations of the running event loop (one per process in servers)."""
    return EntryIds()


async def store_entry(new: NewEntry, *, scope: str | None = None) -> int:
    """Answer ``new``'s exact key from Redis now and queue its row, in a round trip of its own; its id.

    ``scope``: the semantic scope's marker key, set with the entry (before its row exists, so a
    lookup never skips a scope that holds entries). Raises what Redis refused.
    """
    store.check_entry(new)
    entry_id = await entry_ids().take()
    batch = Batch()
    for command in _commands(new, entry_id, scope):
        batch.command(*command)
    for result in await batch.execute():
        if isinstance(result, Exception):
            raise result
    return entry_id


def store_commands(new: NewEntry, *, scope: str | None = None) -> list[tuple[Any, ...]] | None:
    """What ``store_entry`` sends, to go with another round trip; None when no reserved id is at hand."""
    store.check_entry(new)  # an entry its row could never hold is refused here, not in the drain
    entry_id = entry_ids().take_nowait()
    return None if entry_id is None else _commands(new, entry_id, scope)


def _commands(new: NewEntry, entry_id: int, scope: str | None) -> list[tuple[Any, ...]]:
    """The exact-layer SET, the scope marker and the queued row, for the entry with id ``entry_id``."""
    value = replace(new.answer, entry_id=entry_id).to_json()
    ttl = max(1, new.ttl_seconds)
    commands: list[tuple[Any, ...]] = [("SET", new.exact_key, value, "EX", ttl)]
    if scope is not None and new.vector is not None:
        commands.append(("SET", scope, b"1", "EX", ttl))
    commands.append(("XADD", QUEUE, "MAXLEN", "~", settings.GATEWAY["CACHE_QUEUE_MAX"], "*", *_fields(new, value)))
    return commands


def _fields(new: NewEntry, value: bytes) -> tuple[str | bytes, ...]:
    """The queued entry: the exact-layer value (answer and id) and the rest of the row."""
    row = {
        "tenant": new.tenant_id,
        "namespace": new.namespace,
        "context": new.context_hash,
        "key": new.exact_key,
        "prompt": new.prompt_text,
        "ttl": new.ttl_seconds,
        "embedder": new.embedder,
        "at": time.time(),
    }
    fields: tuple[str | bytes, ...] = ("a", value, "r", orjson.dumps(row))
    if new.vector is not None:
        fields += ("v", orjson.dumps(new.vector))
    return fields


def _entry(fields: dict[bytes, bytes]) -> NewEntry:
    answer = CachedAnswer.from_json(fields[b"a"])
    row = orjson.loads(fields[b"r"])
    vector = fields.get(b"v")
    return NewEntry(
        tenant_id=int(row["tenant"]),
        namespace=row["namespace"],
        context_hash=row["context"],
        exact_key=row["key"],
        prompt_text=row["prompt"],
        answer=answer,
        ttl_seconds=int(row["ttl"]),
        embedder=row["embedder"],
        vector=orjson.loads(vector) if vector is not None else None,
        stored_at=datetime.fromtimestamp(float(row["at"]), UTC),
    )


def drain(*, batch_size: int = 500, max_batches: int = 20) -> int:
    """Insert queued entries into PostgreSQL; how many were taken off the queue.

    An entry PostgreSQL refuses (its tenant deleted meanwhile, a NUL in its text) is logged and
    dropped without holding up the others; an unavailable database stops the drain and leaves
    the queue for the next one.
    """
    client = sync_client()
    taken = 0
    for _ in range(max_batches):
        queued = client.xrange(QUEUE, count=batch_size)
        if not queued:
            break
        entries = []
        for stream_id, fields in queued:
            try:
                entries.append(_entry(fields))
            except (KeyError, TypeError, ValueError):
                logger.error("response cache: unreadable queued entry %r dropped", stream_id)
        _insert_splitting(entries)
        client.xdel(QUEUE, *[stream_id for stream_id, _ in queued])
        taken += len(queued)
        if len(queued) < batch_size:
            break
    return taken


def _insert_splitting(entries: list[NewEntry]) -> None:
    if not entries:
        return
    try:
        with transaction.atomic():  # a savepoint inside a caller's transaction: a refusal leaves it usable
            store.insert_entries(entries)
        return
    except UNAVAILABLE:
        raise
    except Exception as exc:
        if len(entries) == 1:
            logger.error("response cache: entry %s refused (%s); dropped", entries[0].answer.entry_id, exc)
            return
    half = len(entries) // 2  # find the refused entries; the others are stored
    _insert_splitting(entries[:half])
    _insert_splitting(entries[half:])

"""Cache entries inserted together: one worker-thread call and one INSERT for all that are waiting.

Every answer the response cache keeps becomes a ``CacheEntry`` row. Inserted one by one, each
cost a hop to a worker thread, a pooled connection and an INSERT compiled by the ORM: about half
of the gateway's CPU per request under load when every answer was stored (measured in the commit
that added this module). Here the entries that arrive while a batch is being written wait for the
next one, so an idle gateway still writes each entry at once and a busy one writes tens per
statement. Each caller gets its own entry's id, or its own error: when a batch fails, its
entries are inserted again one by one, so one unstorable entry never loses the others.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async

from caching import store
from gateway_platform.event_loops import per_event_loop

logger = logging.getLogger(__name__)

MAX_BATCH = 100  # entries per INSERT


class EntryWriter:
    """The entries of one event loop waiting for their INSERT, and the task writing them."""

    def __init__(self) -> None:
        self._waiting: list[tuple[store.NewEntry, asyncio.Future[int]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def insert(self, new: store.NewEntry) -> int:
        """Store ``new``; its id once its batch is written."""
        store.check_entry(new)  # a refused entry fails alone, before it joins a batch
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._waiting.append((new, done))
        if self._writing is None or self._writing.done():
            self._writing = loop.create_task(self._write())
        return await asyncio.shield(done)  # a cancelled caller leaves its entry to be written

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                ids = await sync_to_async(store.insert_entries, thread_sensitive=False)([new for new, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch[0][1], exc)
                    continue
                for new, done in batch:  # find the entry that failed; the others are stored
                    try:
                        (entry_id,) = await sync_to_async(store.insert_entries, thread_sensitive=False)([new])
                    except Exception as alone:
                        _fail(done, alone)
                    else:
                        _succeed(done, entry_id)
            else:
                for (_, done), entry_id in zip(batch, ids, strict=True):
                    _succeed(done, entry_id)


def _succeed(done: asyncio.Future[int], entry_id: int) -> None:
    if not done.done():
        done.set_result(entry_id)


def _fail(done: asyncio.Future[int], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)


@per_event_loop
def entry_writer() -> EntryWriter:
    """The writer of the running event loop (one per process in servers)."""
    return EntryWriter()

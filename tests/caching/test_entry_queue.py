"""Answers stored through the Redis queue: the exact layer at once, each row once from the drain."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from caching import entry_queue, store
from caching.entry_queue import QUEUE, EntryIds
from caching.models import CacheEntry
from caching.store import CachedAnswer, NewEntry
from gateway_platform.redis_clients import sync_client
from tests.conftest import BASE_DIR, free_port, server_env
from tests.factories import make_team

pytestmark = pytest.mark.django_db

ANSWER = CachedAnswer(
    entry_id=None,
    response={"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "ok"}}]},
    model="mock-small",
    prompt_tokens=10,
    completion_tokens=5,
    cost_usd=Decimal("0.0001"),
)


def entry(tenant_id: int, prompt: str, *, vector: list[float] | None = None, ttl: int = 60) -> NewEntry:
    key = f"gwcache:x:{tenant_id}:{prompt}"
    return NewEntry(tenant_id, "ns", "ctx", key, prompt, ANSWER, ttl, "minilm" if vector else "", vector)


def store_all(entries: list[NewEntry]) -> list[int]:
    async def run() -> list[int]:
        return await asyncio.gather(*(entry_queue.store_entry(new) for new in entries))

    return async_to_sync(run)()


def test_a_stored_answer_answers_at_once_and_gets_its_row_from_the_drain() -> None:
    tenant = make_team().tenant
    vector = [0.5] * 384
    new = entry(tenant.pk, "what is a monad", vector=vector, ttl=600)
    scope = store.scope_key(tenant.pk, "ns", "ctx", "minilm")
    entry_id = async_to_sync(entry_queue.store_entry)(new, scope=scope)

    assert async_to_sync(store.exact_get)(new.exact_key) == replace(ANSWER, entry_id=entry_id)
    assert sync_client().exists(scope)
    assert not CacheEntry.objects.filter(pk=entry_id).exists()  # the row waits for the drain

    assert entry_queue.drain() == 1
    row = CacheEntry.objects.get(pk=entry_id)
    assert (row.tenant_id, row.prompt_text, row.response, row.cost_usd) == (
        tenant.pk,
        "what is a monad",
        ANSWER.response,
        ANSWER.cost_usd,
    )
    assert row.dimensions == 384 and list(row.embedding) == vector
    assert timedelta(seconds=590) < row.expires_at - row.created_at < timedelta(seconds=610)
    assert sync_client().xlen(QUEUE) == 0


def test_an_entry_drained_twice_is_stored_once() -> None:
    """A drain that died after inserting but before deleting leaves the entries for the next one."""
    tenant = make_team().tenant
    ids = store_all([entry(tenant.pk, f"prompt {n}") for n in range(5)])
    client = sync_client()
    queued = client.xrange(QUEUE)
    assert entry_queue.drain() == 5
    for _, fields in queued:  # what the dead drain read is still queued
        client.xadd(QUEUE, fields)
    assert entry_queue.drain() == 5
    assert sorted(CacheEntry.objects.filter(tenant=tenant).values_list("pk", flat=True)) == sorted(ids)


@pytest.mark.django_db(transaction=True)  # the tenant's foreign key is checked when the drain commits
def test_entries_the_database_refuses_are_dropped_alone() -> None:
    tenant, gone = make_team().tenant, make_team().tenant
    prompts = ["first", "second", "nul \x00 inside", "fourth"]  # PostgreSQL refuses NUL in text
    ids = store_all([entry(tenant.pk, p) for p in prompts] + [entry(gone.pk, "its tenant is deleted")])
    gone.delete()
    sync_client().xadd(QUEUE, {"a": b"not json", "r": b"{}"})

    assert entry_queue.drain() == 6
    stored = dict(CacheEntry.objects.values_list("prompt_text", "pk"))
    assert stored == {"first": ids[0], "second": ids[1], "fourth": ids[3]}
    assert sync_client().xlen(QUEUE) == 0


def test_a_vector_without_an_index_is_refused_before_anything_is_sent() -> None:
    tenant = make_team().tenant
    new = entry(tenant.pk, "p", vector=[0.1] * 100)
    with pytest.raises(ValueError, match="100-dimensional"):
        async_to_sync(entry_queue.store_entry)(new)
    assert sync_client().get(new.exact_key) is None and sync_client().xlen(QUEUE) == 0


def test_without_a_drain_the_queue_keeps_only_the_newest_entries(settings: Any) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "CACHE_QUEUE_MAX": 100}
    tenant = make_team().tenant
    store_all([entry(tenant.pk, f"prompt {n}") for n in range(1000)])
    length = sync_client().xlen(QUEUE)
    assert 100 <= length < 300  # trimmed by whole stream nodes (100 entries each), never below the bound
    newest = entry_queue._entry(sync_client().xrevrange(QUEUE, count=1)[0][1])
    assert newest.prompt_text == "prompt 999"


def test_ids_come_from_reserved_blocks_unique_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    reservations: list[int] = []
    reserve = store.reserve_entry_ids

    def counted(count: int) -> list[int]:  # the real reservation, counted
        reservations.append(count)
        return reserve(count)

    monkeypatch.setattr(store, "reserve_entry_ids", counted)

    async def take_all() -> list[int]:
        ids = EntryIds(block=10)
        return await asyncio.gather(*(ids.take() for _ in range(25)))

    taken = async_to_sync(take_all)()
    assert len(set(taken)) == 25
    assert reservations == [10, 10, 10]
    later = store.reserve_entry_ids(1)[0]
    assert later > max(taken)  # the sequence moved past every id handed out


def test_commands_for_another_round_trip_need_an_id_at_hand() -> None:
    """Without a reserved id nothing is sent with the request (a block is reserved meanwhile); then it is."""
    tenant = make_team().tenant
    new = entry(tenant.pk, "stored with the usage record")

    async def twice() -> tuple[object, object]:
        first = entry_queue.store_commands(new)
        await entry_queue.entry_ids().take()  # waits for the reservation the first call started
        return first, entry_queue.store_commands(new)

    first, second = async_to_sync(twice)()
    assert first is None
    assert isinstance(second, list) and [command[0] for command in second] == ["SET", "XADD"]
    assert second[0][1] == new.exact_key


@pytest.mark.django_db(transaction=True)  # the entries' tenant must be visible to the drains' own connections
def test_a_drain_that_cannot_reach_the_database_leaves_the_queue_for_the_next() -> None:
    """A real refused connection, in a drain process of its own: nothing is taken off the queue."""
    tenant = make_team().tenant
    ids = store_all([entry(tenant.pk, f"prompt {n}") for n in range(3)])
    script = "import django; django.setup(); from caching import entry_queue; entry_queue.drain()"
    env = server_env(
        DATABASE_URL=f"postgres://nobody@127.0.0.1:{free_port()}/nothing",  # nothing listens there
        DATABASE_POOL_TIMEOUT="1",
        DJANGO_SETTINGS_MODULE="gateway_platform.settings",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "OperationalError" in done.stderr, done.stderr[-2000:]
    assert sync_client().xlen(QUEUE) == 3

    assert entry_queue.drain() == 3  # the database is back
    assert sorted(CacheEntry.objects.filter(tenant=tenant).values_list("pk", flat=True)) == sorted(ids)

"""Cache entries stored together: one INSERT for the entries waiting, each caller its own id or error."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from caching import store
from caching.entry_writer import EntryWriter
from caching.models import CacheEntry
from caching.store import CachedAnswer, NewEntry
from tests.factories import make_team

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = CachedAnswer(
    entry_id=None,
    response={"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "ok"}}]},
    model="mock-small",
    prompt_tokens=10,
    completion_tokens=5,
    cost_usd=Decimal("0.0001"),
)


def entry(tenant_id: int, prompt: str, vector: list[float] | None = None) -> NewEntry:
    return NewEntry(tenant_id, "ns", "ctx", f"gwcache:x:{tenant_id}:{prompt}", prompt, ANSWER, 60, "", vector)


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many entries each call of ``store.insert_entries`` was given (the real function still runs)."""
    sizes: list[int] = []
    insert_entries = store.insert_entries

    def counted(entries: list[NewEntry]) -> list[int]:
        sizes.append(len(entries))
        return insert_entries(entries)

    monkeypatch.setattr(store, "insert_entries", counted)
    return sizes


def test_entries_arriving_together_share_an_insert_and_each_gets_its_own_id(inserts: list[int]) -> None:
    tenant = make_team().tenant

    async def store_all() -> list[int]:
        writer = EntryWriter()
        return await asyncio.gather(*(writer.insert(entry(tenant.pk, f"prompt {n}")) for n in range(30)))

    ids = asyncio.run(store_all())
    assert len(set(ids)) == 30
    stored = dict(CacheEntry.objects.filter(pk__in=ids).values_list("pk", "prompt_text"))
    assert [stored[entry_id] for entry_id in ids] == [f"prompt {n}" for n in range(30)]
    assert sum(inserts) == 30 and len(inserts) < 30  # all were waiting when the writer ran: one INSERT


def test_an_entry_the_database_refuses_fails_alone(inserts: list[int]) -> None:
    tenant = make_team().tenant

    async def store_all() -> list[int | BaseException]:
        writer = EntryWriter()
        prompts = ["first", "second", "nul \x00 inside", "fourth"]  # PostgreSQL refuses NUL in text
        return await asyncio.gather(*(writer.insert(entry(tenant.pk, p)) for p in prompts), return_exceptions=True)

    first, second, refused, fourth = asyncio.run(store_all())
    assert isinstance(refused, Exception)
    assert set(CacheEntry.objects.filter(tenant=tenant).values_list("prompt_text", flat=True)) == {
        "first",
        "second",
        "fourth",
    }
    assert {first, second, fourth} == set(CacheEntry.objects.filter(tenant=tenant).values_list("pk", flat=True))


def test_a_vector_without_an_index_is_refused_before_it_joins_a_batch(inserts: list[int]) -> None:
    async def store_one() -> int:
        return await EntryWriter().insert(entry(1, "p", [0.1] * 100))

    with pytest.raises(ValueError, match="100-dimensional"):
        asyncio.run(store_one())
    assert inserts == []

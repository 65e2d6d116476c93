"""The two cache layers: exact answers in Redis, entries and their vectors in PostgreSQL.

The exact layer is one Redis string per entry (``gwcache:x:<tenant>:<hash>``,
expiring with the entry's TTL) holding everything needed to answer, so an
exact hit costs one Redis GET and no database work. The semantic layer is
``CacheEntry`` with a pgvector HNSW index per vector size; a lookup is one
top-k query scoped to tenant, namespace, context and embedder.

With a tenant filter, an HNSW scan stops after ``hnsw.ef_search`` candidates
and can return nothing for a rare tenant; this bites once a prepared
statement switches to a generic plan (which assumes an average tenant and
picks the HNSW index). Every lookup therefore runs with
``hnsw.iterative_scan = relaxed_order`` (pgvector >= 0.8), which makes the
scan continue until enough rows pass the filter (results are re-sorted by
distance), and with ``plan_cache_mode = force_custom_plan``, so even a
prepared lookup is planned for its actual scope (``LOOKUP_SETTINGS``).

Hit counts and last-hit times are counted in Redis on the hot path and
written to PostgreSQL by the eviction task (``flush_hits``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from caching.models import INDEXED_DIMENSIONS, CacheEntry
from gateway_platform.redis_clients import async_client, sync_client

logger = logging.getLogger(__name__)

HITS_KEY = "gwcache:hits"
LAST_HIT_KEY = "gwcache:last-hit"
CANDIDATES = 4  # nearest entries checked by the parameter guard


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored answer as the hot path serves it."""

    entry_id: int | None
    response: dict[str, Any]
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    prompt_text: str = ""
    similarity: float | None = None  # None for an exact hit

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.entry_id,
                "response": self.response,
                "model": self.model,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost_usd": str(self.cost_usd),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> CachedAnswer:
        data = orjson.loads(raw)
        return cls(
            entry_id=data["id"],
            response=data["response"],
            model=data["model"],
            prompt_tokens=data["prompt_tokens"],
            completion_tokens=data["completion_tokens"],
            cost_usd=Decimal(data["cost_usd"]),
        )


@dataclass(frozen=True, slots=True)
class SemanticQuery:
    """Where and what to look for in the semantic layer."""

    tenant_id: int
    namespace: str
    context_hash: str
    embedder: str
    vector: list[float]

    @property
    def dimensions(self) -> int:
        return len(self.vector)


# -- exact layer (Redis) ----------------------------------------------------------------------


async def exact_get(key: str) -> CachedAnswer | None:
    raw = await async_client().get(key)
    return CachedAnswer.from_json(raw) if raw else None


def scope_key(tenant_id: int, namespace: str, context_hash: str, embedder_signature: str) -> str:
    """The Redis marker saying a semantic scope holds entries (``gwcache:s:<tenant>:<hash>``)."""
    digest = hashlib.sha256(f"{namespace}\0{context_hash}\0{embedder_signature}".encode()).hexdigest()[:32]
    return f"gwcache:s:{tenant_id}:{digest}"


async def exact_get_and_scope(key: str, scope: str | None) -> tuple[CachedAnswer | None, bool]:
    """The exact-layer answer and whether the semantic scope has entries, in one round trip.

    A scope without the marker is not searched (and the prompt not embedded): after a
    Redis loss the first store in a scope sets it again, so at most one miss is lost.
    """
    if scope is None:
        return await exact_get(key), False
    pipe = async_client().pipeline(transaction=False)
    pipe.get(key)
    pipe.exists(scope)
    raw, scoped = await pipe.execute()
    return (CachedAnswer.from_json(raw) if raw else None), bool(scoped)


def hit_commands(entry_id: int | None) -> list[tuple[Any, ...]]:
    """The Redis commands that count a hit (written to the entry by ``flush_hits``), to send in a batch."""
    if entry_id is None:
        return []
    return [
        ("HINCRBY", HITS_KEY, str(entry_id), 1),
        ("HSET", LAST_HIT_KEY, str(entry_id), timezone.now().isoformat()),
    ]


def flush_hits() -> int:
    """Move the hit counters from Redis into ``CacheEntry`` rows; the number of entries updated."""
    client = sync_client()
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(HITS_KEY)
    pipe.hgetall(LAST_HIT_KEY)
    pipe.delete(HITS_KEY, LAST_HIT_KEY)
    hits, last_hits, _ = pipe.execute()
    updated = 0
    for raw_id, count in hits.items():
        entry_id = int(raw_id)
        last = last_hits.get(raw_id)
        last_at = datetime.fromisoformat(last.decode()) if last else timezone.now()
        updated += CacheEntry.objects.filter(pk=entry_id).update(
            hit_count=F("hit_count") + int(count), last_hit_at=last_at
        )
    return updated


def release_connection() -> None:
    """Hand a worker thread's pooled connection back (not inside a caller's transaction)."""
    if not connection.in_atomic_block:
        connection.close()


# -- semantic layer (PostgreSQL + pgvector) --------------------------------------------------------


def vector_literal(vector: list[float]) -> str:
    """A pgvector text literal."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def semantic_sql(dimensions: int) -> str:
    """The top-k query for vectors of one size.

    The size is part of the SQL (not a parameter) so the planner can match the
    partial index ``cache_entry_hnsw_<size>``; it comes from a fixed list. The
    limit is a constant too, so a generic plan costs the same as a custom one.
    """
    if dimensions not in INDEXED_DIMENSIONS:
        raise ValueError(f"no index for {dimensions}-dimensional vectors")
    vec = f"embedding::vector({dimensions})"
    return f"""
        SELECT id, prompt_text, response, model, prompt_tokens, completion_tokens, cost_usd, distance FROM (
            SELECT id, prompt_text, response, model, prompt_tokens, completion_tokens, cost_usd,
                   {vec} <=> %s::vector({dimensions}) AS distance
            FROM caching_cacheentry
            WHERE dimensions = {dimensions} AND tenant_id = %s AND namespace = %s AND context_hash = %s
              AND embedder = %s AND expires_at > now()
            ORDER BY {vec} <=> %s::vector({dimensions})
            LIMIT {CANDIDATES}
        ) AS nearest ORDER BY distance
    """


def semantic_params(query: SemanticQuery) -> tuple[Any, ...]:
    literal = vector_literal(query.vector)
    return (literal, query.tenant_id, query.namespace, query.context_hash, query.embedder, literal)


# One round trip, local to the lookup's transaction:
# - iterative scans: an HNSW scan under a tenant filter goes on until it found enough of the tenant's rows;
# - custom plans: a generic (prepared) plan assumes an average scope and walks the HNSW index even for a
#   scope of ten rows (100+ ms at 100k entries, bench/cache); planned with the real values, PostgreSQL
#   reads a small scope through its B-tree and only uses HNSW for scopes large enough to need it.
LOOKUP_SETTINGS = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)
ITERATIVE_ONLY = "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"


def semantic_candidates(cursor: Any, query: SemanticQuery, *, custom_plan: bool = True) -> list[CachedAnswer]:
    """The ``CANDIDATES`` nearest live entries, closest first (run it in a transaction: its settings are local).

    ``custom_plan=False`` leaves the plan to the statement cache (tests of the generic-plan pitfall).
    """
    cursor.execute(LOOKUP_SETTINGS if custom_plan else ITERATIVE_ONLY)
    cursor.execute(semantic_sql(query.dimensions), semantic_params(query))
    answers = []
    for entry_id, prompt, response, model, prompt_tokens, completion_tokens, cost, distance in cursor.fetchall():
        answers.append(
            CachedAnswer(
                entry_id=entry_id,
                response=orjson.loads(response) if isinstance(response, (str, bytes)) else response,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=Decimal(cost),
                prompt_text=prompt,
                similarity=1.0 - float(distance),
            )
        )
    return answers


def nearest(query: SemanticQuery) -> list[CachedAnswer]:
    """``semantic_candidates`` on the default database (synchronous; run it in a thread)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            return semantic_candidates(cursor, query)
    finally:
        release_connection()


@dataclass(frozen=True, slots=True)
class NewEntry:
    """What ``insert_entries`` stores, under the id reserved for it (``answer.entry_id``)."""

    tenant_id: int
    namespace: str
    context_hash: str
    exact_key: str
    prompt_text: str
    answer: CachedAnswer
    ttl_seconds: int
    embedder: str = ""
    vector: list[float] | None = None
    stored_at: datetime | None = None  # when the answer was stored (its TTL counts from then); None: now


def check_entry(new: NewEntry) -> None:
    """Refuse an entry whose vector has no index (a size its embedder does not promise)."""
    vector = new.vector
    if vector is not None and len(vector) not in INDEXED_DIMENSIONS:
        raise ValueError(f"refusing a {len(vector)}-dimensional vector: no index for that size")


def _row(new: NewEntry) -> CacheEntry:
    check_entry(new)
    if new.answer.entry_id is None:
        raise ValueError("an entry is inserted under the id reserved for it (reserve_entry_ids)")
    vector = new.vector
    return CacheEntry(
        id=new.answer.entry_id,
        tenant_id=new.tenant_id,
        namespace=new.namespace,
        context_hash=new.context_hash,
        exact_key=new.exact_key,
        prompt_text=new.prompt_text,
        response=new.answer.response,
        model=new.answer.model,
        embedder=new.embedder if vector is not None else "",
        dimensions=len(vector) if vector is not None else None,
        embedding=vector,
        prompt_tokens=new.answer.prompt_tokens,
        completion_tokens=new.answer.completion_tokens,
        cost_usd=new.answer.cost_usd,
        expires_at=(new.stored_at or timezone.now()) + timedelta(seconds=new.ttl_seconds),
    )


def reserve_entry_ids(count: int) -> list[int]:
    """``count`` new ids from the entries' sequence, so an entry can be named before its row exists."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [CacheEntry._meta.db_table, count],
        )
        return [int(row[0]) for row in cursor.fetchall()]


def insert_entries(entries: Sequence[NewEntry]) -> None:
    """Store entries with one INSERT (synchronous).

    An entry that already has its row (the same id) is left as it is, so inserting a batch
    again after a crash stores each entry once.
    """
    CacheEntry.objects.bulk_create([_row(new) for new in entries], ignore_conflicts=True)

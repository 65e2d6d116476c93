"""(c) Semantic lookup latency with 10k, 100k and 1M entries over 100 tenants: HNSW vs exact scan.

"As planned" is the gateway's lookup exactly (``caching.store.LOOKUP_SETTINGS``:
iterative scans and custom plans); "HNSW" forces the index walk (sorting
disabled). Rows are generated inside PostgreSQL (``generate_series`` and ``random()``,
384-dimensional unit vectors, 100 tenants x 10 namespaces), the HNSW index
is built after loading, then lookups run the gateway's own query
(``caching.store.semantic_sql`` with ``hnsw.iterative_scan = relaxed_order``)
over a psycopg connection that prepares statements (the default threshold).
"Exact" is the same query with the ORDER BY made unusable for the HNSW
index, so PostgreSQL reads the (tenant, namespace, context) B-tree and sorts
by true distance. Queries are stored vectors plus noise (a "paraphrase").
Random vectors have no cluster structure: the hardest case for HNSW.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from django.db import connection

from caching.models import CacheEntry, hnsw_index
from caching.store import ITERATIVE_ONLY, LOOKUP_SETTINGS, SemanticQuery, semantic_params, semantic_sql

TENANTS = 100
NAMESPACES = 10  # per tenant (--namespaces)
CHUNK = 100_000
SIGNATURE = "bench:random:384"
FILL = """
    INSERT INTO caching_cacheentry (tenant_id, namespace, context_hash, exact_key, prompt_text, response, model,
        embedder, dimensions, embedding, prompt_tokens, completion_tokens, cost_usd, created_at, expires_at, hit_count)
    SELECT (%s::bigint[])[1 + (g %% {tenants})], 'ns' || ((g / {tenants}) %% {namespaces}), 'ctx', 'k' || g, '',
        '{{}}'::jsonb, 'm', %s, 384,
        (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 384) WHERE g > 0)::vector,
        0, 0, 0, now(), now() + interval '1 day', 0
    FROM generate_series(%s, %s) AS g
"""


@dataclass(frozen=True, slots=True)
class Measured:
    entries: int
    load_seconds: float
    index_seconds: float
    planned_p50_ms: float
    planned_p99_ms: float
    hnsw_p50_ms: float
    hnsw_p99_ms: float
    exact_p50_ms: float
    exact_p99_ms: float
    recall_at_1: float  # HNSW top-1 == exact top-1
    planned_uses_hnsw: float  # share of planned lookups whose plan walks the HNSW index


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tenant_ids() -> list[int]:
    from tenants.models import Tenant

    ids = []
    for i in range(TENANTS):
        tenant, _ = Tenant.objects.get_or_create(slug=f"bench-{i}", defaults={"name": f"bench {i}"})
        ids.append(tenant.pk)
    return ids


def load(entries: int, tenants: list[int], namespaces: int = NAMESPACES, log: Any = print) -> tuple[float, float]:
    """Replace the table's rows with ``entries`` synthetic ones; (load, index build) seconds.

    A table already holding exactly ``entries`` bench rows and the index is reused (0, 0).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE embedder = %s), count(DISTINCT namespace) FROM caching_cacheentry",
            (SIGNATURE,),
        )
        total, ours, spaces = cursor.fetchone()
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'cache_entry_hnsw_384'")
        if total == ours == entries and spaces == namespaces and cursor.fetchone():
            log(f"  reusing the {entries:,} rows already loaded")
            return 0.0, 0.0
        cursor.execute("DROP INDEX IF EXISTS cache_entry_hnsw_384")
        cursor.execute("TRUNCATE caching_cacheentry")
        started = time.perf_counter()
        for start in range(1, entries + 1, CHUNK):
            end = min(entries, start + CHUNK - 1)
            cursor.execute(FILL.format(tenants=TENANTS, namespaces=namespaces), (tenants, SIGNATURE, start, end))
            log(f"  loaded {end:,} rows ({time.perf_counter() - started:.0f} s)")
        loaded = time.perf_counter() - started
        cursor.execute("SET maintenance_work_mem = '3GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 2")
        started = time.perf_counter()
        with connection.schema_editor() as editor:
            editor.add_index(CacheEntry, hnsw_index(384))
        built = time.perf_counter() - started
        log(f"  HNSW index built in {built:.0f} s")
        cursor.execute("ANALYZE caching_cacheentry")
    return loaded, built


def sample_queries(count: int, seed: int = 3) -> list[tuple[int, str, list[float]]]:
    """(tenant, namespace, vector) of stored rows, with noise added to the vector."""
    rng = np.random.default_rng(seed)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tenant_id, namespace, embedding::text FROM caching_cacheentry TABLESAMPLE SYSTEM (1) LIMIT %s",
            (count,),
        )
        rows = cursor.fetchall()
    queries = []
    for tenant_id, namespace, text in rows:
        vector = np.array([float(x) for x in text.strip("[]").split(",")], dtype=np.float32)
        vector /= np.linalg.norm(vector)
        noisy = vector + rng.normal(0, 0.02, vector.shape).astype(np.float32)
        queries.append((tenant_id, namespace, (noisy / np.linalg.norm(noisy)).tolist()))
    return queries


def exact_sql() -> str:
    """The lookup with an ORDER BY the HNSW index cannot serve (true distances, B-tree filter)."""
    hnsw_order = "ORDER BY embedding::vector(384) <=> %s::vector(384)"
    return semantic_sql(384).replace(hnsw_order, "ORDER BY (embedding::vector(384) <=> %s::vector(384)) + 0")


def measure(
    entries: int, tenants: list[int], namespaces: int = NAMESPACES, queries: int = 300, log: Any = print
) -> Measured:
    loaded, built = load(entries, tenants, namespaces, log)
    sample = sample_queries(queries)
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context"):
        params.pop(name, None)
    timings: dict[str, list[float]] = {"planned": [], "hnsw": [], "exact": []}
    agree = uses_hnsw = 0
    params["prepare_threshold"] = 5  # psycopg's default: statements are prepared from the 5th execution
    with psycopg.connect(**params) as conn:
        for round_, (tenant_id, namespace, vector) in enumerate(sample[:20] + sample):  # 20 warm-up lookups
            query = SemanticQuery(tenant_id, namespace, "ctx", SIGNATURE, vector)
            results = {}
            modes = [
                ("planned", semantic_sql(384), (LOOKUP_SETTINGS,)),  # exactly the gateway's lookup
                # Only the index gives rows in order then; another text, so another prepared statement.
                ("hnsw", "/* hnsw */" + semantic_sql(384), (ITERATIVE_ONLY, "SET LOCAL enable_sort = off")),
                ("exact", exact_sql(), ()),
            ]
            # Whichever runs first reads the scope's pages for the others: take turns.
            for mode, sql, settings in modes[round_ % 3 :] + modes[: round_ % 3]:
                started = time.perf_counter()
                with conn.transaction():
                    cursor = conn.cursor()
                    for statement in settings:
                        cursor.execute(statement)
                    cursor.execute(sql, semantic_params(query))
                    results[mode] = cursor.fetchall()
                if round_ >= 20:
                    timings[mode].append((time.perf_counter() - started) * 1000)
            if round_ >= 20:
                agree += bool(results["hnsw"] and results["exact"] and results["hnsw"][0][0] == results["exact"][0][0])
                if round_ % 10 == 0:
                    uses_hnsw += _plan_uses_hnsw(conn, query)
    measured = len(sample)
    stats = {mode: (statistics.median(ms), _percentile(ms, 0.99)) for mode, ms in timings.items()}
    return Measured(
        entries=entries,
        load_seconds=loaded,
        index_seconds=built,
        planned_p50_ms=stats["planned"][0],
        planned_p99_ms=stats["planned"][1],
        hnsw_p50_ms=stats["hnsw"][0],
        hnsw_p99_ms=stats["hnsw"][1],
        exact_p50_ms=stats["exact"][0],
        exact_p99_ms=stats["exact"][1],
        recall_at_1=agree / measured,
        planned_uses_hnsw=uses_hnsw / len(range(0, measured, 10)),
    )


def _plan_uses_hnsw(conn: psycopg.Connection, query: SemanticQuery) -> bool:
    """Whether PostgreSQL plans this lookup (custom plan, literal values) through the HNSW index."""
    cursor = psycopg.ClientCursor(conn)
    with conn.transaction():
        cursor.execute("EXPLAIN " + semantic_sql(384), semantic_params(query))
        return any("cache_entry_hnsw_384" in row[0] for row in cursor.fetchall())


def embedding_latency(samples: int = 200) -> tuple[float, float]:
    """p50 / p99 ms of embedding one prompt with the local model (reported separately)."""
    from caching.embedders.local import shared

    model = shared()
    model.load()
    words = ["summarise", "the", "file", "report", "csv", "and", "list", "every", "anomaly", "in", "numbers"]
    rng = random.Random(5)
    timings = []
    for _ in range(samples):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
        started = time.perf_counter()
        model.embed_sync(text)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), _percentile(timings, 0.99)

"""The pgvector pitfall: a rare tenant behind a prepared (generic-plan) HNSW query.

Once psycopg has prepared the lookup (after 5 executions by default) and
PostgreSQL has switched the prepared statement to a generic plan (after 5
custom plans), the plan assumes an average tenant and walks the HNSW index.
A plain HNSW scan stops after ``hnsw.ef_search`` (40) candidates, none of
which may belong to a tenant holding 0.2 % of the rows, so the filtered
top-k comes back empty. ``semantic_candidates`` sets ``hnsw.iterative_scan =
relaxed_order`` for its transaction, so the scan goes on until it finds the
tenant's rows. (It also forces custom plans, which keeps small scopes on their
B-tree; ``custom_plan=False`` below leaves the plan to the statement cache, so
the HNSW path itself is what is tested.)

Whether PostgreSQL adopts the generic plan after five executions depends on
cost estimates (it does when most traffic comes from similar tenants); the
test sets ``plan_cache_mode = force_generic_plan`` on the connection so that
what production gets sooner or later happens on every run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from django.db import connection, transaction

from caching.store import CachedAnswer, SemanticQuery, semantic_candidates, semantic_params, semantic_sql
from tests.factories import make_team

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 3000
RARE_EVERY = 500  # 6 rows of 3,000: 0.2 %
SIGNATURE = "test:random:384"
FILL = """
    INSERT INTO caching_cacheentry (tenant_id, namespace, context_hash, exact_key, prompt_text, response, model,
        embedder, dimensions, embedding, prompt_tokens, completion_tokens, cost_usd, created_at, expires_at, hit_count)
    SELECT CASE WHEN g %% {every} = 0 THEN %s ELSE %s END, 'ns', 'ctx', 'k' || g, 'p' || g, '{{}}'::jsonb, 'm',
        %s, 384, (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 384) WHERE g > 0),
        0, 0, 0, now(), now() + interval '1 hour', 0
    FROM generate_series(1, {rows}) AS g
"""


@pytest.fixture
def tenants() -> Iterator[tuple[int, int]]:
    common, rare = make_team().tenant.pk, make_team().tenant.pk
    # Building the index after the rows is much faster than inserting into it row by row;
    # DDL is transactional, so the index is back whatever happens.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'cache_entry_hnsw_384'")
        [definition] = cursor.fetchone()
        cursor.execute("DROP INDEX cache_entry_hnsw_384")
        cursor.execute(FILL.format(every=RARE_EVERY, rows=ROWS), (rare, common, SIGNATURE))
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred FK checks would block CREATE INDEX
        cursor.execute(definition)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE caching_cacheentry")
    yield common, rare


def vectors_of(tenant_id: int) -> list[tuple[int, list[float]]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, embedding::text FROM caching_cacheentry WHERE tenant_id = %s ORDER BY id", (tenant_id,)
        )
        return [(row[0], [float(x) for x in row[1].strip("[]").split(",")]) for row in cursor.fetchall()]


def server_side_connection() -> psycopg.Connection:
    """A plain psycopg connection: server-side parameters, prepared after 5 executions (the defaults)."""
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context"):
        params.pop(name, None)
    params["prepare_threshold"] = 5
    # Autocommit: every ``conn.transaction()`` is a real transaction, so SET LOCAL ends with it.
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    return conn


def test_a_rare_tenant_still_finds_its_entries_after_the_lookup_was_prepared(tenants: tuple[int, int]) -> None:
    common, rare = tenants
    common_vectors = vectors_of(common)[:12]
    rare_vectors = vectors_of(rare)
    assert len(rare_vectors) == ROWS // RARE_EVERY

    with server_side_connection() as conn:
        for _, vector in common_vectors:  # the busy tenant's traffic prepares the statement
            with conn.transaction():
                assert lookup(conn, SemanticQuery(common, "ns", "ctx", SIGNATURE, vector), custom_plan=False)
        for entry_id, vector in rare_vectors:
            query = SemanticQuery(rare, "ns", "ctx", SIGNATURE, vector)
            for custom_plan in (False, True):  # through the HNSW index, then as the gateway plans it
                found = lookup(conn, query, custom_plan=custom_plan)
                assert found and found[0].entry_id == entry_id
                assert found[0].similarity == pytest.approx(1.0, abs=1e-5)

        name, generic_plans = conn.execute(
            "SELECT name, generic_plans FROM pg_prepared_statements WHERE statement LIKE '%%caching_cacheentry%%'"
        ).fetchone()
        assert generic_plans > 0, "the statement should have switched to a generic plan"
        query = SemanticQuery(rare, "ns", "ctx", SIGNATURE, rare_vectors[0][1])
        cursor = psycopg.ClientCursor(conn)
        with conn.transaction():
            cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            placeholders = ", ".join(["%s"] * len(semantic_params(query)))
            cursor.execute(f"EXPLAIN EXECUTE {name}({placeholders})", semantic_params(query))
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "cache_entry_hnsw_384" in plan, plan

        # A question the rare tenant never asked: the nearest rows are all the busy tenant's.
        rare_ids = {entry_id for entry_id, _ in rare_vectors}
        queries = far_from(rare_vectors, vectors_of(common))
        assert queries, "expected queries whose neighbourhood holds none of the rare tenant's rows"
        for vector in queries:
            query = SemanticQuery(rare, "ns", "ctx", SIGNATURE, vector)
            for custom_plan in (False, True):
                found = lookup(conn, query, custom_plan=custom_plan)
                assert found and {answer.entry_id for answer in found} <= rare_ids
            # The pitfall itself: the same prepared statement without iterative scans finds nothing.
            with conn.transaction():
                plain = conn.cursor()
                plain.execute("SET LOCAL hnsw.iterative_scan = off")
                plain.execute(semantic_sql(384), semantic_params(query))
                assert plain.fetchall() == []


def lookup(conn: psycopg.Connection, query: SemanticQuery, *, custom_plan: bool) -> list[CachedAnswer]:
    with conn.transaction():
        return semantic_candidates(conn.cursor(), query, custom_plan=custom_plan)


def far_from(rare: list[tuple[int, list[float]]], common: list[tuple[int, list[float]]]) -> list[list[float]]:
    """Common rows to query with whose 300 nearest rows (exact cosine) hold no rare row."""
    everything = np.array([v for _, v in common] + [v for _, v in rare], dtype=np.float32)
    everything /= np.linalg.norm(everything, axis=1, keepdims=True)
    is_rare = np.array([False] * len(common) + [True] * len(rare))
    picked = []
    for index in range(60):
        order = np.argsort(-(everything @ everything[index]))
        if not is_rare[order[:300]].any():
            picked.append(common[index][1])
        if len(picked) == 5:
            break
    return picked

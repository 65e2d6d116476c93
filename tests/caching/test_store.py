"""The two layers against real PostgreSQL (pgvector) and Redis: scoping, TTL, eviction, embedder changes."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from caching import entry_queue, eviction, store
from caching.embedders.local import SIGNATURE, MiniLM
from caching.models import CacheEntry, CachePolicy
from caching.store import CachedAnswer, NewEntry, SemanticQuery
from gateway_platform.redis_clients import sync_client
from tests.factories import make_team

pytestmark = pytest.mark.django_db

ANSWER = CachedAnswer(
    entry_id=None,
    response={
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    },
    model="mock-small",
    prompt_tokens=10,
    completion_tokens=5,
    cost_usd=Decimal("0.0001"),
)


def add(tenant_id: int, prompt: str, minilm: MiniLM, *, namespace: str = "ns", ttl: int = 3600, **extra: object) -> int:
    (entry_id,) = store.reserve_entry_ids(1)
    new = NewEntry(
        tenant_id=tenant_id,
        namespace=namespace,
        context_hash="ctx",
        exact_key=f"gwcache:x:{tenant_id}:{namespace}:{prompt}",
        prompt_text=prompt,
        answer=replace(ANSWER, entry_id=entry_id),
        ttl_seconds=ttl,
        embedder=SIGNATURE,
        vector=minilm.embed_sync(prompt),
    )
    store.insert_entries([new])
    if extra:
        CacheEntry.objects.filter(pk=entry_id).update(**extra)
    return entry_id


def query(tenant_id: int, prompt: str, minilm: MiniLM, namespace: str = "ns") -> list[CachedAnswer]:
    vector = minilm.embed_sync(prompt)
    assert vector is not None
    return store.nearest(SemanticQuery(tenant_id, namespace, "ctx", SIGNATURE, vector))


def test_it_finds_a_paraphrase_in_the_same_tenant_and_namespace_only(minilm: MiniLM) -> None:
    mine, other = make_team().tenant, make_team().tenant
    entry = add(mine.pk, "List all Python files in the src directory", minilm)
    add(other.pk, "List all Python files in the src directory", minilm)
    add(mine.pk, "List all Python files in the src directory", minilm, namespace="other-ns")

    [found] = query(mine.pk, "Show me all the Python files in the src directory", minilm)
    assert found.entry_id == entry and found.similarity is not None and found.similarity > 0.9
    assert found.response == ANSWER.response and found.cost_usd == ANSWER.cost_usd
    assert query(make_team().tenant.pk, "List all Python files in the src directory", minilm) == []


def test_expired_entries_are_not_found(minilm: MiniLM) -> None:
    tenant = make_team().tenant
    add(tenant.pk, "Explain what this regex does", minilm, expires_at=timezone.now() - timedelta(seconds=1))
    assert query(tenant.pk, "Explain what this regex does", minilm) == []


def test_it_refuses_a_vector_of_an_unindexed_size() -> None:
    new = NewEntry(1, "ns", "ctx", "k", "p", ANSWER, 60, SIGNATURE, [0.1] * 100)
    with pytest.raises(ValueError, match="100-dimensional"):
        store.insert_entries([new])


def test_exact_layer_entries_expire_with_their_ttl() -> None:
    """The TTL is Redis's own: set on the key, then the entry is gone (a deadline, not a tight sleep)."""
    key = "gwcache:x:test:ttl"
    new = NewEntry(make_team().tenant_id, "ns", "ctx", key, "p", ANSWER, 3)
    entry_id = async_to_sync(entry_queue.store_entry)(new)
    assert 0 < sync_client().pttl(key) <= 3000
    assert async_to_sync(store.exact_get)(key) == replace(ANSWER, entry_id=entry_id)
    deadline = time.monotonic() + 30
    while async_to_sync(store.exact_get)(key) is not None:
        assert time.monotonic() < deadline, "the entry never expired"
        time.sleep(0.2)


def test_eviction_drops_expired_then_keeps_the_newest_max_entries(minilm: MiniLM) -> None:
    tenant = make_team().tenant
    CachePolicy.objects.create(tenant=tenant, max_entries=3)
    now = timezone.now()
    ids = [add(tenant.pk, f"question number {i}", minilm, created_at=now - timedelta(minutes=10 - i)) for i in range(5)]
    expired = add(tenant.pk, "an expired question", minilm, expires_at=now - timedelta(seconds=1))
    # The oldest entry was hit a moment ago: recently used, so it stays.
    CacheEntry.objects.filter(pk=ids[0]).update(last_hit_at=now)
    redis = sync_client()
    for entry in CacheEntry.objects.filter(tenant=tenant):
        redis.set(entry.exact_key, b"x", ex=60)
    other = make_team().tenant
    untouched = [add(other.pk, f"other question {i}", minilm) for i in range(5)]

    done = eviction.evict_entries()

    assert done.expired >= 1 and done.over_limit == 2
    kept = set(CacheEntry.objects.filter(tenant=tenant).values_list("pk", flat=True))
    assert kept == {ids[0], ids[3], ids[4]}
    assert not CacheEntry.objects.filter(pk=expired).exists()
    assert set(CacheEntry.objects.filter(tenant=other).values_list("pk", flat=True)) == set(untouched)
    evicted_keys = [f"gwcache:x:{tenant.pk}:ns:question number {i}" for i in (1, 2)]
    assert redis.exists(*evicted_keys) == 0
    assert redis.exists(f"gwcache:x:{tenant.pk}:ns:question number 4") == 1


def test_hits_counted_in_redis_reach_the_entry(minilm: MiniLM) -> None:
    entry_id = add(make_team().tenant.pk, "count my hits", minilm)
    for _ in range(2):  # what the request path sends with the usage record
        for command in store.hit_commands(entry_id):
            sync_client().execute_command(*command)
    store.flush_hits()
    entry = CacheEntry.objects.get(pk=entry_id)
    assert entry.hit_count == 2 and entry.last_hit_at is not None


def test_changing_the_embedder_empties_the_tenants_semantic_entries(minilm: MiniLM) -> None:
    tenant, other = make_team().tenant, make_team().tenant
    policy = CachePolicy.objects.create(tenant=tenant)
    add(tenant.pk, "what is a monad", minilm)
    add(other.pk, "what is a monad", minilm)

    policy.semantic_threshold = 0.9  # not an embedder change
    policy.save()
    assert CacheEntry.objects.filter(tenant=tenant).exclude(embedding=None).count() == 1

    policy.embedder = CachePolicy.Embedder.PROVIDER
    policy.embedding_model = "text-embedding-3-small"
    policy.embedding_dimensions = 1536
    policy.save()

    [entry] = CacheEntry.objects.filter(tenant=tenant)
    assert (entry.embedding, entry.dimensions, entry.embedder) == (None, None, "")
    assert query(tenant.pk, "what is a monad", minilm) == []
    assert len(query(other.pk, "what is a monad", minilm)) == 1


def test_changing_the_global_embedder_spares_tenants_with_their_own_policy(minilm: MiniLM) -> None:
    follower, own = make_team().tenant, make_team().tenant
    CachePolicy.objects.create(tenant=own)
    policy = CachePolicy.objects.create(tenant=None)
    add(follower.pk, "what is a functor", minilm)
    add(own.pk, "what is a functor", minilm)

    policy.embedder = CachePolicy.Embedder.NONE
    policy.save()

    assert query(follower.pk, "what is a functor", minilm) == []
    assert len(query(own.pk, "what is a functor", minilm)) == 1


def test_policy_validation_checks_dimensions_and_embedder() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        CachePolicy(embedder=CachePolicy.Embedder.PROVIDER, embedding_dimensions=100).full_clean(exclude=["tenant"])
    assert set(excinfo.value.message_dict) == {"embedding_dimensions", "embedding_model"}
    with pytest.raises(ValidationError):
        CachePolicy(embedder=CachePolicy.Embedder.LOCAL, embedding_dimensions=768).full_clean(exclude=["tenant"])

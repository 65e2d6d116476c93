"""The config file's caching section, cache statistics and the admin pages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from billing.models import UsageEvent
from caching.models import CachePolicy, CacheStat
from caching.stats import rollup
from routing.config_file import ConfigError, config_import, config_seed_defaults
from routing.models import ConfigSection
from tests.factories import make_team

pytestmark = pytest.mark.django_db


def test_the_caching_section_imports_into_the_global_policy() -> None:
    config_import(text="caching:\n  enabled: true\n  semantic_threshold: 0.9\n  ttl: 600\n  max_entries: 50\n")

    policy = CachePolicy.objects.get(tenant=None)
    assert (policy.enabled, policy.semantic_threshold, policy.ttl_seconds, policy.max_entries) == (True, 0.9, 600, 50)
    assert ConfigSection.objects.get(name="caching").applied


def test_seeding_keeps_an_edited_global_policy() -> None:
    CachePolicy.objects.create(tenant=None, ttl_seconds=60)
    config_seed_defaults()
    assert CachePolicy.objects.get(tenant=None).ttl_seconds == 60


def test_a_bad_caching_value_names_its_key_and_changes_nothing() -> None:
    with pytest.raises(ConfigError) as excinfo:
        config_import(text="caching:\n  ttl: soon\n  semantic_threshold: 3\n  colour: blue\n")
    message = str(excinfo.value)
    assert "caching.ttl" in message and "caching.colour" in message
    assert not CachePolicy.objects.exists()
    with pytest.raises(ConfigError, match=r"caching\.semantic_threshold"):
        config_import(text="caching:\n  semantic_threshold: 3\n")


def event(tenant_id: int, status: str, saved: str = "0", **fields: object) -> UsageEvent:
    now = timezone.now()
    return UsageEvent.objects.create(
        request_id=f"r-{UsageEvent.objects.count()}-{status}",
        tenant_id=tenant_id,
        endpoint="chat.completions",
        status_code=200,
        cache_status=status,
        cost_saved_usd=Decimal(saved),
        started_at=now,
        finished_at=now,
        **fields,
    )


def test_statistics_count_hits_misses_and_savings_per_tenant_and_day() -> None:
    tenant, other = make_team().tenant, make_team().tenant
    event(tenant.pk, "HIT", "0.002", tokens_saved={"cache_prompt": 100, "cache_completion": 20})
    event(tenant.pk, "SEMANTIC", "0.001", tokens_saved={"cache_prompt": 50, "cache_completion": 10})
    event(tenant.pk, "MISS")
    event(tenant.pk, "BYPASS")
    event(other.pk, "MISS")
    old = event(tenant.pk, "HIT", "5")
    UsageEvent.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=5))

    assert rollup() >= 2
    assert rollup() >= 2  # idempotent

    stat = CacheStat.objects.get(tenant_id=tenant.pk, day=timezone.now().date())
    assert (stat.exact_hits, stat.semantic_hits, stat.misses, stat.bypasses) == (1, 1, 1, 1)
    assert stat.tokens_saved == 180 and stat.cost_saved_usd == Decimal("0.003")
    assert stat.hit_rate == pytest.approx(2 / 3)
    assert CacheStat.objects.get(tenant_id=other.pk).misses == 1


def test_the_admin_says_whether_the_semantic_layer_works() -> None:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client()
    client.force_login(user)
    policy = CachePolicy.objects.create(tenant=None, embedder=CachePolicy.Embedder.PROVIDER, embedding_model="nope")

    page = client.get(f"/admin/caching/cachepolicy/{policy.pk}/change/")
    assert page.status_code == 200
    assert "Semantic layer OFF: no enabled model named" in page.content.decode()
    for url in ("/admin/caching/cachepolicy/", "/admin/caching/cacheentry/", "/admin/caching/cachestat/"):
        assert client.get(url).status_code == 200

"""Response cache: policies, entries (the semantic layer) and daily statistics.

``CacheEntry.embedding`` is an untyped pgvector ``vector`` column so one table
holds vectors from embedders of different sizes; each size in
``INDEXED_DIMENSIONS`` has its own partial HNSW index over
``embedding::vector(N)`` (cosine) restricted to ``dimensions = N``. Lookups
always name the size as a literal so the planner can use that index, and
every write checks that the vector has the size its embedder promises.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import OpClass
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Cast
from pgvector.django import HnswIndex, VectorField

# Vector sizes the semantic layer can index (local MiniLM 384; OpenAI 512/1024/1536 via ``dimensions``;
# nomic-embed-text 768). pgvector's HNSW takes at most 2000 dimensions for ``vector``.
INDEXED_DIMENSIONS = (384, 512, 768, 1024, 1536)


def hnsw_index(dimensions: int) -> HnswIndex:
    """The partial cosine HNSW index for vectors of one size."""
    return HnswIndex(
        OpClass(Cast("embedding", VectorField(dimensions=dimensions)), name="vector_cosine_ops"),
        name=f"cache_entry_hnsw_{dimensions}",
        condition=models.Q(dimensions=dimensions),
        m=16,
        ef_construction=64,
    )


class CachePolicy(models.Model):
    """How a tenant's answers are cached; the row without a tenant is the global default."""

    class Embedder(models.TextChoices):
        NONE = "none", "None (exact layer only)"
        LOCAL = "local", "Local all-MiniLM-L6-v2 (int8 ONNX, optional requirements)"
        PROVIDER = "provider", "An embedding model through the gateway's providers"

    class ToolsRule(models.TextChoices):
        NEVER = "never", "Never cache requests that define tools"
        READ_ONLY = "read_only", "Cache only when every tool is listed as read-only"
        ALWAYS = "always", "Cache requests with tools (tools have no side effects)"

    tenant = models.OneToOneField(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="cache_policy"
    )
    enabled = models.BooleanField(default=True)
    semantic_enabled = models.BooleanField(
        default=True, help_text="Also answer paraphrases (needs an embedder); the exact layer works without one."
    )
    semantic_threshold = models.FloatField(default=0.85, help_text="Cosine similarity a paraphrase needs (0-1).")
    ttl_seconds = models.PositiveIntegerField(default=3600)
    max_entries = models.PositiveIntegerField(default=1000, help_text="Per tenant; the least recently hit go first.")
    cacheable_routes = ArrayField(
        models.CharField(max_length=64),
        default=list,
        blank=True,
        help_text="Endpoints whose answers are cached (chat.completions, messages); empty = both.",
    )
    cacheable_models = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="Tier or model names (as resolved) that are cacheable; empty = all.",
    )
    max_temperature = models.FloatField(
        default=0.7, help_text="Requests asking for a higher temperature want variety and are not cached."
    )
    tools_rule = models.CharField(max_length=16, choices=ToolsRule.choices, default=ToolsRule.NEVER)
    read_only_tools = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="Tool names (shell-style patterns, e.g. read_*, search_files) without side effects.",
    )
    embedder = models.CharField(max_length=16, choices=Embedder.choices, default=Embedder.LOCAL)
    embedding_model = models.CharField(
        max_length=200, blank=True, help_text="Public model name, for the provider embedder."
    )
    embedding_dimensions = models.PositiveIntegerField(
        default=384, help_text=f"Vector size; one of {', '.join(map(str, INDEXED_DIMENSIONS))}."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "cache policies"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_global_cache_policy", nulls_distinct=False)]

    def __str__(self) -> str:
        return f"cache policy for {self.tenant or 'all tenants'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; a changed embedder empties the semantic entries of the tenants this policy governs."""
        previous = CachePolicy.objects.filter(pk=self.pk).first() if self.pk else None
        super().save(*args, **kwargs)
        if previous is not None and previous.embedder_signature() != self.embedder_signature():
            CacheEntry.objects.governed_by(self).forget_vectors()

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not 0 < self.semantic_threshold <= 1:
            errors["semantic_threshold"] = "Must be greater than 0 and at most 1."
        if self.embedding_dimensions not in INDEXED_DIMENSIONS:
            errors["embedding_dimensions"] = f"Must be one of {', '.join(map(str, INDEXED_DIMENSIONS))}."
        if self.embedder == self.Embedder.LOCAL and self.embedding_dimensions != 384:
            errors["embedding_dimensions"] = "The local all-MiniLM-L6-v2 embedder produces 384 dimensions."
        if self.embedder == self.Embedder.PROVIDER and not self.embedding_model:
            errors["embedding_model"] = "Name the embedding model (a model's public name)."
        if errors:
            raise ValidationError(errors)

    def embedder_signature(self) -> str:
        """Identifies the vector space this policy's embedder writes into ('' without one)."""
        if self.embedder == self.Embedder.LOCAL:
            return "local:all-MiniLM-L6-v2-int8:384"
        if self.embedder == self.Embedder.PROVIDER:
            return f"provider:{self.embedding_model}:{self.embedding_dimensions}"
        return ""


class CacheEntryQuerySet(models.QuerySet["CacheEntry"]):
    def governed_by(self, policy: CachePolicy) -> CacheEntryQuerySet:
        """Entries of the tenants whose answers ``policy`` governs."""
        if policy.tenant_id is not None:
            return self.filter(tenant_id=policy.tenant_id)
        own = CachePolicy.objects.filter(tenant__isnull=False).values("tenant_id")
        return self.exclude(tenant_id__in=own)

    def forget_vectors(self) -> int:
        """Take these entries out of the semantic layer (the exact layer keeps them)."""
        return self.exclude(embedding=None).update(embedding=None, dimensions=None, embedder="")


class CacheEntry(models.Model):
    """One cached answer: the exact key it is stored under and, with an embedder, its prompt's vector."""

    # Indexed by ``cache_entry_scope`` (tenant first), so no index of its own.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    namespace = models.CharField(max_length=64, help_text="Hash of model/tier, system prompt, tools and cache key.")
    context_hash = models.CharField(
        max_length=64, help_text="Hash of the turns before the last user message and the sampling parameters."
    )
    exact_key = models.CharField(max_length=128, help_text="The Redis key of the exact layer.")
    prompt_text = models.TextField(help_text="The last user message (what the semantic layer compares).")
    response = models.JSONField(help_text="The OpenAI chat.completion answer.")
    model = models.CharField(max_length=200, help_text="The deployment that produced the answer.")
    embedder = models.CharField(max_length=200, blank=True)
    dimensions = models.PositiveSmallIntegerField(null=True, blank=True)
    embedding = VectorField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    hit_count = models.PositiveIntegerField(default=0)

    objects = CacheEntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "cache entries"
        indexes = [
            models.Index(fields=["tenant", "namespace", "context_hash"], name="cache_entry_scope"),
            models.Index(fields=["expires_at"], name="cache_entry_expiry"),
            *(hnsw_index(dims) for dims in INDEXED_DIMENSIONS),
        ]

    def __str__(self) -> str:
        return self.prompt_text[:80]


class CacheStat(models.Model):
    """Cache outcomes per tenant and day, recomputed from usage events (reports read these)."""

    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    day = models.DateField()
    exact_hits = models.PositiveIntegerField(default=0)
    semantic_hits = models.PositiveIntegerField(default=0)
    misses = models.PositiveIntegerField(default=0)
    bypasses = models.PositiveIntegerField(default=0)
    tokens_saved = models.BigIntegerField(default=0)
    cost_saved_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "tenant_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="cache_stat_tenant_day")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}"

    @property
    def hit_rate(self) -> float:
        """Hits over cacheable requests (hits and misses; bypasses were never cacheable)."""
        hits = self.exact_hits + self.semantic_hits
        looked_up = hits + self.misses
        return hits / looked_up if looked_up else 0.0

"""Tiers (named routes over ordered models), routing policy and stored config sections."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Tier(models.Model):
    """A named class of work served by an ordered list of models (primary, then fallbacks)."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    capabilities = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    max_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    enabled = models.BooleanField(default=True)
    members = models.ManyToManyField("providers.Model", through="TierModel", related_name="tiers")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TierModel(models.Model):
    """A model's place in a tier: position 0 is the primary, the rest are fallbacks in order."""

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="tier_models")
    model = models.ForeignKey("providers.Model", on_delete=models.PROTECT, related_name="tier_models")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["tier", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "position"], name="tier_model_position_unique"),
            models.UniqueConstraint(fields=["tier", "model"], name="tier_model_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tier.name}[{self.position}] = {self.model.name}"


class RoutingPolicy(models.Model):
    """How requests are routed; the row without a tenant is the global default."""

    class Strategy(models.TextChoices):
        COST_OPTIMIZED = "cost_optimized", "Cost optimised"
        QUALITY_FIRST = "quality_first", "Quality first"
        LOCAL_FIRST = "local_first", "Local first"

    tenant = models.OneToOneField(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="routing_policy"
    )
    strategy = models.CharField(max_length=32, choices=Strategy.choices, default=Strategy.COST_OPTIMIZED)
    fallback_model = models.ForeignKey(
        "providers.Model",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Local model tried after every tier's own models fail.",
    )
    fallback_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "routing policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="one_global_routing_policy", nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"routing policy for {self.tenant or 'all tenants'}"


class ConfigSection(models.Model):
    """A config-file section kept as imported; ``applied`` is false until a feature uses it."""

    name = models.CharField(max_length=100, unique=True)
    data = models.JSONField()
    applied = models.BooleanField(default=False)
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

"""Tiers: named routes over ordered models, global or per tenant."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models

MAX_WEIGHT = 2**31 - 1  # TierModel.weight is a PostgreSQL integer


class Balancing(models.TextChoices):
    """How several deployments at one tier position share its requests (``routing.balancing``)."""

    WEIGHTED = "weighted", "Weighted random"
    LEAST_BUSY = "least-busy", "Least busy (fewest in flight per weight)"
    LATENCY = "latency", "Lowest recent time to first token"


class Tier(models.Model):
    """A named class of work served by an ordered list of models (primary, then fallbacks).

    Several models may share a position (deployments of one model, e.g. per region or
    account): the tier's ``balancing`` strategy spreads that position's requests over them.
    """

    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tiers",
        help_text="Empty for a global tier; set to override the global tier of the same name for one tenant.",
    )
    name = models.SlugField(max_length=100, help_text="What clients send as `model` to use this tier, e.g. `premium`.")
    description = models.TextField(blank=True)
    capabilities = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Comma-separated tags; `auto` sends requests whose keywords match a tag to this tier's band.",
    )
    max_cost_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Models whose input price (USD per million tokens) exceeds this are skipped at route time.",
    )
    complexity_max = models.FloatField(
        null=True,
        blank=True,
        help_text="Upper bound of the complexity band `auto` routes here (e.g. 0.35, 0.65, 1.0).",
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Output cap applied when a request sets none."
    )
    enabled = models.BooleanField(default=True, help_text="A disabled tier is neither listed nor routed to.")
    balancing = models.CharField(
        max_length=20,
        choices=Balancing.choices,
        default=Balancing.WEIGHTED,
        help_text=(
            "How a position with several models (the same position number) spreads requests over them: "
            "by weight, to the one with the fewest requests in flight (per unit of weight), or to the one "
            "with the lowest recent time to first token. The others of the position are its first fallbacks."
        ),
    )
    members = models.ManyToManyField(
        "providers.Model",
        through="TierModel",
        related_name="tiers",
        help_text="The models that serve the tier, primary first (edited as the ordered list below).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="tier_name_unique_per_tenant", nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return self.name

    def positions(self) -> list[list[tuple[str, int]]]:
        """The models by position, in order: ``(name, weight)`` of each, heaviest first within a position.

        Reads ``tier_models`` as loaded (prefetch it with its default ordering to avoid a query per tier).
        """
        positions: dict[int, list[tuple[str, int]]] = {}
        for tm in sorted(self.tier_models.all(), key=lambda tm: (tm.position, -tm.weight, tm.pk)):
            positions.setdefault(tm.position, []).append((tm.model.name, tm.weight))
        return [positions[p] for p in sorted(positions)]

    def models_over_cost_cap(self) -> list[str]:
        """Names of this tier's models whose input price exceeds ``max_cost_per_million`` (skipped at route time)."""
        cap = self.max_cost_per_million
        if cap is None:
            return []
        return [tm.model.name for tm in self.tier_models.all() if tm.model.input_cost_per_million > cap]


class TierModel(models.Model):
    """A model's place in a tier: position 0 is the primary, the rest are fallbacks in order.

    Models with the same position share it: the tier's ``balancing`` picks one per request
    (``weight`` is its share under ``weighted``, its capacity under ``least-busy``).
    """

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="tier_models")
    model = models.ForeignKey("providers.Model", on_delete=models.PROTECT, related_name="tier_models")
    position = models.PositiveSmallIntegerField(
        default=0, help_text="0 is the primary; fallbacks follow in order. Models with the same position share it."
    )
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="This model's share of its position's requests (relative to the others there; at least 1).",
    )

    class Meta:
        ordering = ["tier", "position", "-weight", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "model"], name="tier_model_unique"),
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="tier_model_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.tier.name}[{self.position}] = {self.model.name}"


def position_value(position: list[tuple[str, int]]) -> str | list[dict[str, object]]:
    """A tier position as the API and the config file write it: a model name, or ``[{model, weight}, ...]``.

    A position is written as a plain name when one model holds it with the default weight.
    """
    if len(position) == 1 and position[0][1] == 1:
        return position[0][0]
    return [{"model": name, "weight": weight} for name, weight in position]

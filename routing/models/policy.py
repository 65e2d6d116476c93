"""Per-tenant routing and guardrail policies (a row without a tenant is the global default)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class RoutingPolicy(models.Model):
    """How requests are routed; the row without a tenant is the global default."""

    class Strategy(models.TextChoices):
        COST_OPTIMIZED = "cost_optimized", "Cost optimised"
        QUALITY_FIRST = "quality_first", "Quality first"
        LOCAL_FIRST = "local_first", "Local first"

    tenant = models.OneToOneField(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="routing_policy"
    )
    strategy = models.CharField(
        max_length=32,
        choices=Strategy.choices,
        default=Strategy.COST_OPTIMIZED,
        help_text=(
            "cost_optimized: the scored band. quality_first: a score near a band's upper edge goes one "
            "band up. local_first: the lowest band tries the local fallback model first."
        ),
    )
    fallback_model = models.ForeignKey(
        "providers.Model",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Local model tried after every tier's own models fail.",
    )
    fallback_enabled = models.BooleanField(default=True, help_text="Use the local fallback model at all.")
    baseline_tier = models.CharField(
        max_length=100, blank=True, help_text="Tier savings are measured against (usually the premium tier)."
    )
    cascade_enabled = models.BooleanField(
        default=False, help_text="Try the next cheaper tier first and escalate when its answer fails the checks."
    )
    cascade_quality_threshold = models.FloatField(
        default=0.6, help_text="Quality score (0-1) a cheap answer needs to be returned."
    )
    strip_ide_boilerplate = models.BooleanField(
        default=False, help_text="Token reduction: remove the boilerplate IDEs repeat in every system prompt."
    )
    dedupe_files = models.BooleanField(
        default=False, help_text="Token reduction: send a file pasted several times in one request only once."
    )
    trim_context = models.BooleanField(
        default=True, help_text="Token reduction: drop the oldest turns when a request exceeds the model's window."
    )
    diff_first_edits = models.BooleanField(
        default=False, help_text="Ask edit requests for a unified diff instead of whole files (cheaper answers)."
    )
    code_mode = models.BooleanField(
        default=False,
        help_text="Code mode: a system instruction asking for complete code in fenced blocks and short prose.",
    )
    anthropic_prompt_caching = models.BooleanField(
        default=True, help_text="Mark stable prompt prefixes with cache_control on Anthropic deployments."
    )
    summarize_context = models.BooleanField(
        default=False,
        help_text="Replace the oldest turns of a long conversation by a summary from the cheapest tier (billed).",
    )
    summarize_threshold_tokens = models.PositiveIntegerField(
        default=60_000, help_text="Conversation size (estimated prompt tokens) above which older turns are summarised."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "routing policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="one_global_routing_policy", nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"routing policy for {self.tenant or 'all tenants'}"


class GuardrailPolicy(models.Model):
    """What to do when an answer contains a destructive command; the row without a tenant is global."""

    class Mode(models.TextChoices):
        ALLOW = "allow", "Allow"
        ANNOTATE = "annotate", "Annotate (header and logged event)"
        BLOCK = "block", "Block (answer replaced by a refusal)"

    tenant = models.OneToOneField(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="guardrail_policy"
    )
    mode = models.CharField(
        max_length=16,
        choices=Mode.choices,
        default=Mode.ANNOTATE,
        help_text="What happens when an answer would have an agent run a listed command.",
    )
    commands = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Comma-separated command words (rm, sudo, chmod, ...) an answer must not have an agent run.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "guardrail policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="one_global_guardrail_policy", nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"guardrail for {self.tenant or 'all tenants'}: {self.mode}"

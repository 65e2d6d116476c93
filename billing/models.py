"""Usage events (one per /v1/ request) and budgets."""

from __future__ import annotations

from django.db import models


class UsageEvent(models.Model):
    """What one request asked for, who served it, and what it cost.

    Written in batches from a Redis stream, idempotent on ``request_id``. The
    references carry no database constraint: an accounting row must be
    storable even if its key or team was deleted after the request.
    """

    request_id = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    team = models.ForeignKey(
        "tenants.Team", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    endpoint = models.CharField(max_length=64)
    requested_model = models.CharField(max_length=200, blank=True)
    tier = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    tokens_estimated = models.BooleanField(default=False, help_text="Upstream sent no usage; counts are estimates.")
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to first token (streams).")
    status_code = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    cache_status = models.CharField(max_length=16, default="BYPASS")
    stream = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    attempts = models.JSONField(default=list, blank=True, help_text="Every upstream hop tried, in order.")
    skill = models.CharField(max_length=100, blank=True)
    route_reason = models.JSONField(
        default=dict, blank=True, help_text="Why this tier: complexity score and top features (auto routing)."
    )
    tokens_saved = models.JSONField(default=dict, blank=True, help_text="Prompt tokens saved per reduction feature.")
    cost_saved_usd = models.DecimalField(
        max_digits=18, decimal_places=10, default=0, help_text="Upstream cost avoided (cache hits)."
    )
    cache_similarity = models.FloatField(null=True, blank=True)
    budget_status = models.CharField(max_length=32, blank=True, help_text="e.g. 'downgraded' by a budget.")
    guardrail = models.CharField(max_length=32, blank=True, help_text="'annotated' or 'blocked' by a guardrail.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["tenant", "started_at"], name="usage_tenant_time"),
            models.Index(fields=["api_key", "started_at"], name="usage_key_time"),
            models.Index(fields=["started_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return self.request_id


class Budget(models.Model):
    """A spending limit on a tenant, a team or a key (exactly one of them)."""

    class Period(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"
        TOTAL = "total", "Total"

    class Action(models.TextChoices):
        BLOCK = "block", "Block"
        DOWNGRADE = "downgrade", "Downgrade"

    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    team = models.ForeignKey("tenants.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    amount_usd = models.DecimalField(max_digits=14, decimal_places=4)
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTHLY)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.BLOCK)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(tenant__isnull=False, team__isnull=True, api_key__isnull=True)
                    | models.Q(tenant__isnull=True, team__isnull=False, api_key__isnull=True)
                    | models.Q(tenant__isnull=True, team__isnull=True, api_key__isnull=False)
                ),
                name="budget_exactly_one_scope",
            )
        ]

    def __str__(self) -> str:
        scope = self.api_key or self.team or self.tenant
        return f"{self.amount_usd} USD {self.period} for {scope}"


class UsageRollup(models.Model):
    """Usage aggregated per period (hour or day) and dimension; reports read only these.

    Recomputing a period replaces its rows, so rollups are idempotent.
    """

    class Granularity(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    granularity = models.CharField(max_length=8, choices=Granularity.choices)
    period_start = models.DateTimeField()
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    team = models.ForeignKey(
        "tenants.Team", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    tier = models.CharField(max_length=100, blank=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    saved_by_cache_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    saved_by_routing_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    saved_by_reduction_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    tokens_saved = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["granularity", "tenant", "period_start"], name="rollup_tenant_period"),
            models.Index(fields=["granularity", "period_start"], name="rollup_period"),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.period_start:%Y-%m-%d %H:00} {self.model}"

"""Usage events (one per /v1/ request), their rollups, budgets, limits and alerts."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import models
from django.db.models import Sum, Value
from django.db.models.functions import Coalesce

if TYPE_CHECKING:
    from tenants.models import Tenant

DEFAULT_THRESHOLDS = (50, 80, 100)


def default_thresholds() -> list[int]:
    """Soft thresholds (percent of the budget) that send an alert when crossed."""
    return list(DEFAULT_THRESHOLDS)


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


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
    cache_read_tokens = models.PositiveIntegerField(
        default=0, help_text="Prompt tokens read from the provider's prompt cache (part of prompt_tokens)."
    )
    cache_write_tokens = models.PositiveIntegerField(
        default=0, help_text="Prompt tokens written to the provider's prompt cache (part of prompt_tokens)."
    )
    prompt_cache_saved_usd = models.DecimalField(
        max_digits=18,
        decimal_places=10,
        default=0,
        help_text="Provider prompt caching: cost at the full input price minus the cost charged (may be negative).",
    )
    session = models.CharField(
        max_length=200, blank=True, help_text="The client's agent session (prompt_cache_key, metadata.user_id, …)."
    )
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
        # Every time-range query goes through one of these (no partitioning: a unique
        # request_id across monthly partitions is not enforceable in PostgreSQL). The
        # INCLUDE columns let budget seeding sum spend with index-only scans.
        indexes = [
            models.Index(fields=["tenant", "started_at"], name="usage_tenant_time_cost", include=["cost_usd"]),
            models.Index(fields=["team", "started_at"], name="usage_team_time_cost", include=["cost_usd"]),
            models.Index(fields=["api_key", "started_at"], name="usage_key_time_cost", include=["cost_usd", "model"]),
            models.Index(fields=["started_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return self.request_id


class Budget(models.Model):
    """A spending limit on a tenant, a team or a key (exactly one), optionally per model on a key.

    Periods reset at calendar boundaries in the tenant's time zone. A request
    must fit every budget above it; ``action`` says what happens when it does
    not: refuse (``block``) or retry on ``downgrade_tier`` first.
    """

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
    model = models.CharField(
        max_length=200, blank=True, help_text="Only on a key: limit spend on this public model name alone."
    )
    amount_usd = models.DecimalField(max_digits=14, decimal_places=4)
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTHLY)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.BLOCK)
    downgrade_tier = models.CharField(
        max_length=100, blank=True, help_text="Tier a request that does not fit is retried on (action 'downgrade')."
    )
    thresholds = ArrayField(
        models.PositiveSmallIntegerField(),
        default=default_thresholds,
        blank=True,
        help_text="Percentages of the amount that send an alert when crossed, once per period.",
    )
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
            ),
            models.CheckConstraint(
                condition=models.Q(model="") | models.Q(api_key__isnull=False), name="budget_model_only_on_key"
            ),
            models.CheckConstraint(
                condition=models.Q(action="block") | ~models.Q(downgrade_tier=""), name="budget_downgrade_names_tier"
            ),
            models.CheckConstraint(condition=models.Q(amount_usd__gt=0), name="budget_amount_positive"),
        ]

    def __str__(self) -> str:
        scope = self.api_key or self.team or self.tenant
        model = f" on {self.model}" if self.model else ""
        return f"{self.amount_usd} USD {self.period} for {scope}{model}"

    def owner_tenant(self) -> Tenant:
        """The tenant whose time zone and alert channels this budget uses."""
        if self.api_key is not None:
            return self.api_key.team.tenant
        if self.team is not None:
            return self.team.tenant
        assert self.tenant is not None
        return self.tenant

    def scope_label(self) -> str:
        """``API key 'laptop'``, ``team 'acme/web'`` or ``tenant 'acme'`` (plus the model, if any)."""
        if self.api_key is not None:
            label = f"API key '{self.api_key.name}'"
        elif self.team is not None:
            label = f"team '{self.team.tenant.slug}/{self.team.slug}'"
        else:
            label = f"tenant '{self.owner_tenant().slug}'"
        return label + (f" on model '{self.model}'" if self.model else "")

    def clean(self) -> None:
        if sum(x is not None for x in (self.tenant_id, self.team_id, self.api_key_id)) != 1:
            raise ValidationError("A budget belongs to exactly one tenant, team or API key.")
        if self.model and self.api_key_id is None:
            raise ValidationError({"model": "A per-model budget must be on an API key."})
        if self.action == self.Action.DOWNGRADE and not self.downgrade_tier:
            raise ValidationError({"downgrade_tier": "The 'downgrade' action needs a tier to downgrade to."})
        if any(not 1 <= t <= 100 for t in self.thresholds or []):
            raise ValidationError({"thresholds": "Thresholds are percentages between 1 and 100."})
        self.thresholds = sorted(set(self.thresholds or []))


class KeyModelLimit(models.Model):
    """Requests and tokens per minute for one API key on one model (on top of the key's own limits)."""

    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.CASCADE, related_name="model_limits")
    model = models.CharField(max_length=200, help_text="Public model name; applies when a request may be served by it.")
    rpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute.")
    tpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "model"], name="key_model_limit_unique")]

    def __str__(self) -> str:
        return f"{self.api_key} on {self.model}"


class AlertChannel(models.Model):
    """Where a tenant's budget alerts go: an email address or a signed JSON webhook."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="alert_channels")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=500, help_text="Email address, or the webhook's https URL.")
    secret = models.CharField(
        max_length=100,
        default=new_webhook_secret,
        help_text="Webhooks: HMAC-SHA256 key; the X-Gateway-Signature header is sha256=<hex> of the body.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"

    def clean(self) -> None:
        validator = EmailValidator() if self.kind == self.Kind.EMAIL else URLValidator(schemes=["http", "https"])
        try:
            validator(self.target)
        except ValidationError as exc:
            raise ValidationError({"target": exc.messages}) from None


class BudgetAlert(models.Model):
    """A soft threshold crossed in one budget period; the unique constraint makes alerts exactly-once."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    spent_usd = models.DecimalField(max_digits=18, decimal_places=10)
    amount_usd = models.DecimalField(max_digits=14, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "threshold"], name="budget_alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.budget}"


ROLLUP_DIMENSIONS = ("tenant", "team", "api_key", "model", "provider", "tier")
ROLLUP_COUNTS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cache_hits",
    "tokens_saved",
    "cache_read_tokens",
    "cache_write_tokens",
)
ROLLUP_MONEY = (
    "cost_usd",
    "saved_by_cache_usd",
    "saved_by_routing_usd",
    "saved_by_reduction_usd",
    "saved_by_prompt_cache_usd",
)


def _sums() -> dict[str, Coalesce]:
    sums: dict[str, Coalesce] = {name: Coalesce(Sum(name), Value(0)) for name in ROLLUP_COUNTS}
    return sums | {name: Coalesce(Sum(name), Value(Decimal(0))) for name in ROLLUP_MONEY}


class UsageRollupQuerySet(models.QuerySet["UsageRollup"]):
    def totals(self, group_by: Sequence[str]) -> models.QuerySet[UsageRollup]:
        """Every measure summed per group: ``period`` (the period start) and any of ``ROLLUP_DIMENSIONS``.

        Rows are dicts keyed ``period_start``, ``tenant_id``, ``team_id``, ``api_key_id``, ``model``,
        ``provider``, ``tier`` (those grouped by) and the measures. One SQL aggregate.
        """
        columns = [_ROLLUP_COLUMNS[name] for name in group_by]
        return self.values(*columns).annotate(**_sums()).order_by(*columns)

    def grand_total(self) -> dict[str, int | Decimal]:
        """Every measure summed over all rows (zeros when there are none)."""
        return self.aggregate(**_sums())


_ROLLUP_COLUMNS = {
    "period": "period_start",
    "tenant": "tenant_id",
    "team": "team_id",
    "api_key": "api_key_id",
    "model": "model",
    "provider": "provider",
    "tier": "tier",
}


class UsageRollup(models.Model):
    """Usage aggregated per period (hour or day) and dimension; reports read only these.

    Hours are UTC hours; days are the tenant's local calendar days (``period_start`` is the
    tenant-local midnight) and exist only for days that are over. Recomputing a period replaces
    its rows, so rollups are idempotent (``billing.rollups``).
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
    cache_read_tokens = models.BigIntegerField(default=0, help_text="Prompt tokens served from provider caches.")
    cache_write_tokens = models.BigIntegerField(default=0, help_text="Prompt tokens written to provider caches.")
    saved_by_prompt_cache_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)

    objects = UsageRollupQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["granularity", "tenant", "period_start"], name="rollup_tenant_period"),
            models.Index(fields=["granularity", "period_start"], name="rollup_period"),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.period_start:%Y-%m-%d %H:00} {self.model}"


class UsageRetentionMark(models.Model):
    """Raw usage events before ``pruned_before`` are deleted (their rollups stay); one row at most.

    Budget seeding reads day rollups for the days before the mark and raw
    events after it, so it stays exact once old events are gone.
    """

    pruned_before = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"raw usage kept from {self.pruned_before:%Y-%m-%d %H:%M}"

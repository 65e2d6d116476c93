"""Serializers of the billing management API: budgets, budget status, usage queries and rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from billing.models import ROLLUP_DIMENSIONS, Budget, UsageRollup
from tenants.models import ApiKey, Team, Tenant

GROUPS = ("period", *ROLLUP_DIMENSIONS)
MAX_RANGE = timedelta(days=400)


class BudgetSerializer(serializers.ModelSerializer):
    """A budget on exactly one of ``tenant``, ``team`` or ``api_key``."""

    tenant = serializers.PrimaryKeyRelatedField(queryset=Tenant.objects.none(), required=False, allow_null=True)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.none(), required=False, allow_null=True)
    api_key = serializers.PrimaryKeyRelatedField(queryset=ApiKey.objects.none(), required=False, allow_null=True)
    thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=100), required=False, max_length=20
    )
    amount_usd = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0.0001"))

    class Meta:
        model = Budget
        fields = (
            "id",
            "tenant",
            "team",
            "api_key",
            "model",
            "amount_usd",
            "period",
            "action",
            "downgrade_tier",
            "thresholds",
            "created_at",
        )
        read_only_fields = ("created_at",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            # The live counters are per budget: a budget never moves to another scope or model.
            for name in ("tenant", "team", "api_key", "model"):
                self.fields[name].read_only = True

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The model's own rules (one scope, model only on a key, a tier to downgrade to)."""
        names = ("tenant", "team", "api_key", "model", "amount_usd", "period", "action", "downgrade_tier")
        candidate = Budget(**{name: attrs.get(name, getattr(self.instance, name, None)) for name in names})
        if candidate.model is None:
            candidate.model = ""
        if candidate.downgrade_tier is None:
            candidate.downgrade_tier = ""
        candidate.thresholds = attrs.get("thresholds", getattr(self.instance, "thresholds", None) or [50, 80, 100])
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            raise serializers.ValidationError(detail) from None
        attrs["thresholds"] = candidate.thresholds
        return attrs


class BudgetStatusSerializer(serializers.Serializer):
    """Where a budget stands in its current period."""

    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField(allow_null=True, help_text="The next reset (null for a total budget).")
    amount_usd = serializers.DecimalField(max_digits=14, decimal_places=4)
    spent_usd = serializers.DecimalField(max_digits=18, decimal_places=10)
    reserved_usd = serializers.DecimalField(max_digits=18, decimal_places=10, help_text="Held by requests in flight.")
    remaining_usd = serializers.DecimalField(max_digits=18, decimal_places=10)
    source = serializers.ChoiceField(choices=["redis", "database"])


class UsageQuerySerializer(serializers.Serializer):
    """Query parameters of ``GET /api/usage/``."""

    start = serializers.DateField(required=False, help_text="First UTC day (default: 30 days before `end`).")
    end = serializers.DateField(required=False, help_text="Last UTC day, inclusive (default: today).")
    granularity = serializers.ChoiceField(
        choices=UsageRollup.Granularity.choices,
        default=UsageRollup.Granularity.HOUR,
        help_text="Hour rows (UTC hours, current hour included) or day rows (tenant-local days that are over).",
    )
    group_by = serializers.MultipleChoiceField(choices=GROUPS, required=False, help_text="Repeat or comma-separate.")
    tenant = serializers.IntegerField(required=False, min_value=1)
    team = serializers.IntegerField(required=False, min_value=1)
    api_key = serializers.IntegerField(required=False, min_value=1)
    model = serializers.CharField(required=False, max_length=200)
    provider = serializers.CharField(required=False, max_length=100)
    tier = serializers.CharField(required=False, max_length=100, allow_blank=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "getlist"):
            values = data.copy()
            groups = [g for raw in data.getlist("group_by") for g in raw.split(",") if g]
            values.setlist("group_by", groups)
            data = values
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end: date = attrs.get("end") or timezone.now().astimezone(UTC).date()
        start: date = attrs.get("start") or end - timedelta(days=30)
        if start > end:
            raise serializers.ValidationError({"start": "Must not be after `end`."})
        if end - start > MAX_RANGE:
            raise serializers.ValidationError({"start": f"Choose a range of at most {MAX_RANGE.days} days."})
        attrs["start_at"] = datetime.combine(start, time(), tzinfo=UTC)
        attrs["end_at"] = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
        attrs["group_by"] = [g for g in GROUPS if g in attrs.get("group_by", ())]
        return attrs


class UsageRowSerializer(serializers.Serializer):
    """Usage summed over one group (only the grouped-by dimensions are present)."""

    period_start = serializers.DateTimeField(required=False)
    tenant_id = serializers.IntegerField(required=False, allow_null=True)
    team_id = serializers.IntegerField(required=False, allow_null=True)
    api_key_id = serializers.IntegerField(required=False, allow_null=True)
    model = serializers.CharField(required=False)
    provider = serializers.CharField(required=False)
    tier = serializers.CharField(required=False)
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    cache_hits = serializers.IntegerField()
    saved_by_cache_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    saved_by_routing_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    saved_by_reduction_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    tokens_saved = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField(help_text="Prompt tokens read from provider prompt caches.")
    cache_write_tokens = serializers.IntegerField(help_text="Prompt tokens written to provider prompt caches.")
    saved_by_prompt_cache_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    saved_by_semantic_cache_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    prompt_cache_hit_rate = serializers.SerializerMethodField(
        help_text="Share of prompt tokens read from provider prompt caches (0-1)."
    )

    def get_prompt_cache_hit_rate(self, row: dict[str, Any]) -> float:
        prompt = row.get("prompt_tokens") or 0
        return round((row.get("cache_read_tokens") or 0) / prompt, 4) if prompt else 0.0

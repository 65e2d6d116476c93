"""Cascade routing outcomes, kept for calibration (seed 003 trajectories)."""

from __future__ import annotations

from django.db import models


class RoutingOutcome(models.Model):
    """One cascade decision: which tier was tried first, whether it escalated and why."""

    created_at = models.DateTimeField(auto_now_add=True)
    request_id = models.CharField(max_length=64, unique=True)  # one decision per request; drains are re-run
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    query_hash = models.CharField(max_length=64, help_text="SHA-256 of the normalised request messages.")
    initial_tier = models.CharField(max_length=100)
    final_tier = models.CharField(max_length=100)
    escalated = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True)
    quality_score = models.FloatField(null=True, blank=True)
    complexity_score = models.FloatField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    success = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["initial_tier", "created_at"], name="outcome_tier_time")]

    def __str__(self) -> str:
        return f"{self.initial_tier} → {self.final_tier}"

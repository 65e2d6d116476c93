"""Trajectory export (seed 003): cascade outcomes as JSON lines, for calibrating thresholds.

One line per ``RoutingOutcome``, oldest first, joined with what its usage event
knows (the tier that was asked for, the quality reasons and threshold, the
served model, tokens and cost), so a threshold can be replayed offline:
"which share would have escalated at 0.5, and what would it have cost?".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from billing.models import UsageEvent
from routing.cascade import DECISION_KEY
from routing.models import RoutingOutcome

BATCH = 1000


def _line(outcome: RoutingOutcome, event: UsageEvent | None) -> dict[str, Any]:
    decision = (event.route_reason or {}).get(DECISION_KEY, {}) if event is not None else {}
    line: dict[str, Any] = {
        "ts": outcome.created_at.isoformat(),
        "request_id": outcome.request_id,
        "tenant_id": outcome.tenant_id,
        "query_hash": outcome.query_hash,
        "requested_tier": decision.get("requested_tier", outcome.final_tier if outcome.escalated else ""),
        "initial_tier": outcome.initial_tier,
        "final_tier": outcome.final_tier,
        "escalated": outcome.escalated,
        "reason": outcome.reason,
        "quality_score": outcome.quality_score,
        "quality_reasons": decision.get("quality_reasons", []),
        "threshold": decision.get("threshold"),
        "complexity_score": outcome.complexity_score,
        "latency_ms": outcome.latency_ms,
        "success": outcome.success,
    }
    if event is not None:
        line.update(
            model=event.model,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            cost_usd=str(event.cost_usd),
            attempts=event.attempts,
        )
    return line


def trajectories(*, since: datetime | None = None, tenant_id: int | None = None) -> Iterator[dict[str, Any]]:
    """The export's records, oldest first, read in batches (constant memory)."""
    outcomes = RoutingOutcome.objects.order_by("created_at", "id")
    if since is not None:
        outcomes = outcomes.filter(created_at__gte=since)
    if tenant_id is not None:
        outcomes = outcomes.filter(tenant_id=tenant_id)
    batch: list[RoutingOutcome] = []
    for outcome in outcomes.iterator(chunk_size=BATCH):
        batch.append(outcome)
        if len(batch) == BATCH:
            yield from _joined(batch)
            batch = []
    yield from _joined(batch)


def _joined(batch: list[RoutingOutcome]) -> Iterator[dict[str, Any]]:
    events = {e.request_id: e for e in UsageEvent.objects.filter(request_id__in=[o.request_id for o in batch])}
    for outcome in batch:
        yield _line(outcome, events.get(outcome.request_id))

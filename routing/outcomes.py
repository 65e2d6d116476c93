"""Cascade outcomes: the decisions carried by usage records, stored as ``RoutingOutcome`` rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from routing.cascade import DECISION_KEY


def write_outcomes(records: Sequence[Mapping[str, Any]]) -> int:
    """Store the cascade decisions carried by usage records as ``RoutingOutcome`` rows (idempotent).

    Called by the usage drain inside its transaction, so an outcome is written
    exactly when its usage event is.
    """
    from routing.models import RoutingOutcome

    rows = []
    for record in records:
        decision = (record.get("route_reason") or {}).get(DECISION_KEY)
        if not isinstance(decision, dict) or decision.get("log") is False:  # CASCADE_LOG_OUTCOMES=0
            continue
        status = int(record.get("status_code") or 0)
        rows.append(
            RoutingOutcome(
                request_id=record["request_id"],
                tenant_id=record.get("tenant_id"),
                query_hash=str(decision.get("query_hash", "")),
                initial_tier=str(decision.get("initial_tier", "")),
                final_tier=str(decision.get("final_tier", "")),
                escalated=bool(decision.get("escalated")),
                reason=str(decision.get("reason", ""))[:200],
                quality_score=decision.get("quality_score"),
                complexity_score=decision.get("complexity"),
                latency_ms=int(record.get("latency_ms") or 0),
                success=200 <= status < 300,
            )
        )
    if rows:
        RoutingOutcome.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)

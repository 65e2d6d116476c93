"""Does the ledger balance? The gateway's usage events against the mock upstream's own ledger.

Each mock request record is one upstream call, keyed by the gateway's request
id (sent upstream as ``X-Request-Id``). A call the mock answered in full is
billed exactly: the event's cost must equal the model table's prices applied
to the tokens the mock served (a cascade's calls summed). A call cut short (a
live stream whose client left) is billed by estimate and counted apart, and so
is a request that was in flight on the gateway process that was SIGKILLed: the
reaper billed it by estimate from its in-flight record (``billing.inflight``).
No call may be without an event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2
import redis

from bench.ledger.run import RunResult
from bench.ledger.world import MODELS, World
from billing.inflight import LOST


@dataclass
class Balance:
    """The figures of a run and every way it failed to balance (empty lists: it balanced)."""

    requests: int = 0
    upstream_calls: int = 0  # mock records with tokens served
    requests_with_calls: int = 0
    events: int = 0
    exact_events: int = 0
    estimated_events: int = 0
    cache_hit_events: int = 0
    ledger_usd: Decimal = Decimal(0)  # the exact calls, priced from the mock's ledger
    billed_usd: Decimal = Decimal(0)  # the same calls as billed
    estimated_usd: Decimal = Decimal(0)  # calls cut short, billed by estimate
    reaped_events: int = 0  # in flight on the killed gateway: billed by estimate by the reaper
    reaped_usd: Decimal = Decimal(0)
    reaped_without_call: int = 0  # of those, killed before the call reached the upstream (billed a prompt anyway)
    budget_usd: Decimal = Decimal(0)
    budget_spent_usd: Decimal = Decimal(0)
    dead_letters: int = 0
    missing: list[str] = field(default_factory=list)  # calls without an event
    duplicates: list[str] = field(default_factory=list)
    cost_mismatches: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    unbacked: list[str] = field(default_factory=list)  # exact events charging for calls the mock never served
    unauthenticated_events: int = 0
    rollup_mismatches: list[Any] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not (
            self.missing
            or self.duplicates
            or self.cost_mismatches
            or self.unbacked
            or self.unauthenticated_events
            or self.rollup_mismatches
            or self.dead_letters
            or self.budget_spent_usd > self.budget_usd
            or self.ledger_usd != self.billed_usd
        )


def _deployments() -> dict[str, Any]:
    """Upstream model name -> the deployment (prices) the gateway bills it at."""
    from routing.catalog import load_catalog

    catalog = load_catalog()[0]
    return {upstream: catalog[name] for name, (upstream, _, _) in MODELS.items()}


def _priced(record: dict[str, Any], deployments: dict[str, Any]) -> Decimal:
    from billing.costs import cost_usd
    from providers.adapters.base import Usage

    tokens = record["usage"]
    usage = Usage(tokens["prompt_tokens"], tokens["completion_tokens"], tokens.get("cached_prompt_tokens", 0))
    return cost_usd(deployments[record["model"]], usage)


def _served_in_full(record: dict[str, Any]) -> bool:
    return record["status"] == 200 and record["completed"] and not record["cancelled"] and not record["dropped"]


def check(result: RunResult, world: World, *, mock_url: str, redis_url: str) -> Balance:
    """Compare the run's events with the mock's ledger; the figures and every discrepancy."""
    from billing import deadletter
    from billing.models import UsageEvent
    from billing.rollups import rollup_dirty, rollups_reconcile

    balance = Balance(requests=len(result.outcomes) + len(result.spooled_outcomes), budget_usd=world.budget_usd)
    records = [r for r in httpx2.get(f"{mock_url}/_mock/events", timeout=30).json() if r["usage"] is not None]
    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        calls[record["id"]].append(record)
    balance.upstream_calls = len(records)
    balance.requests_with_calls = len(calls)
    events = list(UsageEvent.objects.filter(tenant_id__in=world.tenant_ids))
    balance.events = len(events)
    balance.unauthenticated_events = UsageEvent.objects.filter(
        tenant_id__isnull=True, started_at__gte=_start(result)
    ).count()
    by_request: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        by_request[event.request_id].append(event)
    deployments = _deployments()

    for event in events:
        if event.error_code == LOST:
            balance.reaped_events += 1
            balance.reaped_usd += event.cost_usd
            balance.reaped_without_call += event.request_id not in calls
    for request_id, served in calls.items():
        found = by_request.get(request_id, [])
        if len(found) > 1:
            balance.duplicates.append(request_id)
        if not found:
            balance.missing.append(request_id)
            continue
        event = found[0]
        if event.error_code == LOST:
            continue  # counted above
        if event.tokens_estimated or not all(_served_in_full(r) for r in served):
            balance.estimated_events += 1
            balance.estimated_usd += event.cost_usd
            continue
        expected = sum((_priced(r, deployments) for r in served), Decimal(0))
        balance.exact_events += 1
        balance.ledger_usd += expected
        balance.billed_usd += event.cost_usd
        if event.cost_usd != expected:
            balance.cost_mismatches.append((request_id, event.cost_usd, expected))

    for event in events:
        if event.request_id not in calls and event.error_code != LOST:
            balance.cache_hit_events += event.cache_status in ("HIT", "SEMANTIC")
            if event.cost_usd != 0:
                balance.unbacked.append(event.request_id)
    balance.budget_spent_usd = sum((e.cost_usd for e in events if e.api_key_id == world.budget_key_id), Decimal(0))
    balance.dead_letters = deadletter.depth(redis.Redis.from_url(redis_url))
    rollup_dirty()
    start = _start(result).replace(minute=0, second=0, microsecond=0)
    balance.rollup_mismatches = rollups_reconcile(start=start, end=datetime.now(UTC) + timedelta(hours=1))
    return balance


def _start(result: RunResult) -> datetime:
    first = min(o.started for o in result.outcomes) if result.outcomes else 0.0
    return datetime.fromtimestamp(first, UTC) - timedelta(minutes=1)

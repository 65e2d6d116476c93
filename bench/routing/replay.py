"""Replay the labelled workload through the router: scorer and resolver, in process, no HTTP.

The router is built exactly as the gateway builds it — a ``Snapshot`` of the
bundled defaults (``routing/defaults/gateway-config.yaml``: tiers, bands,
models and prices), its tier view and scorer — but in memory, without a
database. Costs use the seeded prices with the request's own prompt tokens
(the gateway's estimate, plus an assumed IDE context overhead) and an
assumed completion size per request kind (``templates.COMPLETION_TOKENS``).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench.routing.templates import COMPLETION_TOKENS
from billing.costs import cost_usd
from gateway_platform.config.snapshot import KeyInfo, Snapshot, TierInfo
from providers.adapters.base import Deployment, ProviderConfig, Usage
from providers.adapters.tokens import estimate_prompt_tokens, estimate_tokens
from routing.resolver import tier_route
from routing.tier_views import TierView, tiers_for

DEFAULTS = Path(__file__).resolve().parents[2] / "routing" / "defaults" / "gateway-config.yaml"
IDE_CONTEXT_TOKENS = 2000  # system prompt, rules and open-file context IDEs add beyond the workload's own text
ANY_KEY = KeyInfo(
    id=0,
    name="bench",
    prefix="bench",
    team_id=0,
    team_slug="bench",
    tenant_id=0,
    tenant_slug="bench",
    tenant_active=True,
    allowed_models=frozenset(),
    expires_at=None,
    revoked=False,
    rpm_limit=None,
    tpm_limit=None,
)


@dataclass(frozen=True, slots=True)
class Router:
    snapshot: Snapshot
    view: TierView
    baseline: str
    order: dict[str, int]  # tier -> band index (cheapest first)


def default_router() -> Router:
    """The router of the bundled defaults, built in memory."""
    config = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))
    providers = {
        p["name"]: ProviderConfig(
            id=i,
            name=p["name"],
            kind=p["kind"],
            base_url=p["base_url"],
            api_key=None,
            connect_timeout=1,
            read_timeout=1,
            total_timeout=1,
            max_connections=1,
        )
        for i, p in enumerate(config["providers"])
    }
    models = {
        m["name"]: Deployment(
            model_id=i,
            name=m["name"],
            upstream_model=m["upstream_model"],
            provider=providers[m["provider"]],
            input_cost_per_million=Decimal(str(m["input_cost_per_million"])),
            output_cost_per_million=Decimal(str(m["output_cost_per_million"])),
            context_window=m["context_window"],
            max_output_tokens=None,
        )
        for i, m in enumerate(config["models"])
    }
    routing = config["routing"]
    tiers = {
        t["name"]: TierInfo(
            id=i,
            name=t["name"],
            description=t.get("description", ""),
            capabilities=tuple(t.get("capabilities", ())),
            deployments=(models[t["model"]],),
            complexity_max=t.get("complexity_max"),
        )
        for i, t in enumerate(routing["tiers"])
    }
    snapshot = Snapshot(version=0, models=models, tiers=tiers, providers=providers, local_fallback=None)
    view = tiers_for(snapshot, None)
    order = {tier.name: index for index, tier in enumerate(view.bands)}
    return Router(snapshot=snapshot, view=view, baseline=routing["baseline_tier"], order=order)


@dataclass(frozen=True, slots=True)
class Routed:
    """One replayed request."""

    id: str
    split: str
    kind: str
    shape: str
    label: str
    tier: str
    score: float
    reason: str
    prompt_tokens: int
    completion_tokens: int


def replay(router: Router, records: Iterable[dict[str, Any]], strategy: str = "cost_optimized") -> list[Routed]:
    """Route every record as the gateway would route ``model="auto"``."""
    results = []
    for record in records:
        body = record["body"]
        decision = router.view.scorer.decide(body, allowed=ANY_KEY.may_use, strategy=strategy)
        route = tier_route(router.snapshot, ANY_KEY, router.view.tiers[decision.tier], requested="auto")
        tools = body.get("tools")
        prompt = estimate_prompt_tokens(body) + (estimate_tokens(orjson.dumps(tools).decode()) if tools else 0)
        results.append(
            Routed(
                id=record["id"],
                split=record["split"],
                kind=record["kind"],
                shape=record["shape"],
                label=record["label"],
                tier=route.tier or "",
                score=decision.score or 0.0,
                reason=decision.header(),
                prompt_tokens=prompt,
                completion_tokens=COMPLETION_TOKENS[record["kind"]],
            )
        )
    return results


@dataclass(frozen=True, slots=True)
class Summary:
    requests: int
    accuracy: float
    below: float  # routed to a cheaper tier than the label: quality risk
    above: float  # routed to a dearer tier than the label: wasted cost
    distribution: dict[str, float]
    label_distribution: dict[str, float]
    confusion: dict[str, dict[str, int]]
    cost_routed: float
    cost_premium: float
    cost_oracle: float

    @property
    def reduction(self) -> float:
        return 1 - self.cost_routed / self.cost_premium if self.cost_premium else 0.0

    @property
    def oracle_reduction(self) -> float:
        return 1 - self.cost_oracle / self.cost_premium if self.cost_premium else 0.0


def _cost(router: Router, tier: str, routed: Routed, overhead: int) -> float:
    deployment = router.view.tiers[tier].deployments[0]
    usage = Usage(prompt_tokens=routed.prompt_tokens + overhead, completion_tokens=routed.completion_tokens)
    return float(cost_usd(deployment, usage))


def summarize(router: Router, results: Sequence[Routed], overhead: int = IDE_CONTEXT_TOKENS) -> Summary:
    """Accuracy, below/above-label shares, tier distribution and cost against all-premium."""
    count = len(results) or 1
    order = router.order
    tiers = [t.name for t in router.view.bands]
    confusion = {label: dict.fromkeys(tiers, 0) for label in tiers}
    for r in results:
        confusion[r.label][r.tier] += 1
    routed = Counter(r.tier for r in results)
    labels = Counter(r.label for r in results)
    return Summary(
        requests=len(results),
        accuracy=sum(r.tier == r.label for r in results) / count,
        below=sum(order[r.tier] < order[r.label] for r in results) / count,
        above=sum(order[r.tier] > order[r.label] for r in results) / count,
        distribution={t: routed[t] / count for t in tiers},
        label_distribution={t: labels[t] / count for t in tiers},
        confusion=confusion,
        cost_routed=sum(_cost(router, r.tier, r, overhead) for r in results),
        cost_premium=sum(_cost(router, router.baseline, r, overhead) for r in results),
        cost_oracle=sum(_cost(router, r.label, r, overhead) for r in results),
    )


def by_label(router: Router, results: Sequence[Routed], overhead: int = IDE_CONTEXT_TOKENS) -> list[dict[str, Any]]:
    """Per label: requests, share of the all-premium bill, and the cost cut routed and at the oracle."""
    premium_total = sum(_cost(router, router.baseline, r, overhead) for r in results) or 1.0
    rows = []
    for tier in router.view.bands:
        subset = [r for r in results if r.label == tier.name]
        premium = sum(_cost(router, router.baseline, r, overhead) for r in subset)
        routed = sum(_cost(router, r.tier, r, overhead) for r in subset)
        oracle = sum(_cost(router, r.label, r, overhead) for r in subset)
        rows.append(
            {
                "label": tier.name,
                "requests": len(subset),
                "premium_share": premium / premium_total,
                "reduction": 1 - routed / premium if premium else 0.0,
                "oracle": 1 - oracle / premium if premium else 0.0,
            }
        )
    return rows


def reweighted(
    router: Router, results: Sequence[Routed], shares: dict[str, float], overhead: int = IDE_CONTEXT_TOKENS
) -> tuple[float, float]:
    """(router cost cut, oracle cost cut) if the labels made up ``shares`` of the traffic instead.

    Each request's costs are weighted by ``share(label) / observed share(label)``: the same requests and
    routing decisions, another mix.
    """
    observed = Counter(r.label for r in results)
    weight = {label: shares[label] * len(results) / observed[label] for label in observed}
    routed = sum(weight[r.label] * _cost(router, r.tier, r, overhead) for r in results)
    premium = sum(weight[r.label] * _cost(router, router.baseline, r, overhead) for r in results)
    oracle = sum(weight[r.label] * _cost(router, r.label, r, overhead) for r in results)
    return 1 - routed / premium, 1 - oracle / premium


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_scorer(router: Router, bodies: Sequence[dict[str, Any]], rounds: int = 20) -> dict[str, float]:
    """Scorer latency in microseconds over ``rounds`` passes of ``bodies``, with the GC off (as ``timeit``).

    ``p50_us`` / ``p99_us`` are over every call; ``best_p99_us`` is the p99 of each body's fastest call,
    which removes preemption by other processes on a busy machine but keeps each request's own cost.
    """
    decide = router.view.scorer.decide
    samples: list[float] = []
    best = [math.inf] * len(bodies)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for index, body in enumerate(bodies):
                start = time.perf_counter_ns()
                decide(body, allowed=ANY_KEY.may_use)
                elapsed = (time.perf_counter_ns() - start) / 1000
                samples.append(elapsed)
                best[index] = min(best[index], elapsed)
    finally:
        if enabled:
            gc.enable()
    return {
        "p50_us": _percentile(samples, 0.50),
        "p99_us": _percentile(samples, 0.99),
        "best_p99_us": _percentile(best, 0.99),
        "max_us": max(samples),
        "mean_us": statistics.fmean(samples),
        "samples": len(samples),
    }


def long_conversations(records: Sequence[dict[str, Any]], count: int = 20, messages: int = 50) -> list[dict[str, Any]]:
    """``count`` different 50-message agent conversations stitched from workload messages.

    Each has a system prompt, the agent tool definitions, user / assistant / tool turns (file contents,
    grep hits, test runs) and ends with the workload's longest user message — the scorer reads the latest
    task most closely, so that is its worst case.
    """
    pool = [m for r in records for m in r["body"]["messages"] if m.get("role") in ("user", "assistant", "tool")]
    longest_task = max((m for m in pool if m["role"] == "user"), key=lambda m: len(m["content"]))
    system = next(m for r in records for m in r["body"]["messages"] if m.get("role") == "system")
    tools = next(r["body"]["tools"] for r in records if r["body"].get("tools"))
    step = max(1, (len(pool) - messages) // count)
    return [
        {"model": "auto", "messages": [system, *pool[i * step : i * step + messages - 2], longest_task], "tools": tools}
        for i in range(count)
    ]

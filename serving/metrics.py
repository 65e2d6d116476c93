"""Gateway metrics (Prometheus), recorded once per request from its ``Exchange``.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` sets it), every process on
the host writes to that directory and ``/metrics`` aggregates them, so the
numbers are right under several server and worker processes.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from providers import circuit
from serving.exchange import Exchange

REQUESTS = Counter(
    "gateway_requests_total", "Requests answered, by served deployment.", ["provider", "model", "tier", "status"]
)
TOKENS = Counter("gateway_tokens_total", "Tokens processed.", ["provider", "model", "direction"])
# Per tenant, for the token-spike alert (deploy/prometheus/alerts.yml); one series per tenant and direction.
TENANT_TOKENS = Counter("gateway_tenant_tokens_total", "Tokens processed, by tenant.", ["tenant", "direction"])
CACHE_HITS = Counter("gateway_cache_hits_total", "Answers served from the response cache.", ["kind"])
CACHE_EMBEDDINGS = Counter(
    "gateway_cache_embeddings_total", "Prompts embedded by the semantic cache, by phase (lookup, store).", ["phase"]
)
COST = Counter("gateway_cost_usd_total", "Upstream cost in USD.", ["tenant", "provider", "model"])
REQUEST_LATENCY = Histogram(
    "gateway_request_latency_seconds",
    "Time from request arrival to the end of the answer.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_latency_seconds",
    "Duration of each upstream attempt.",
    ["provider", "model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
UNAUTHENTICATED = Counter(
    "gateway_unauthenticated_requests_total",
    "Requests answered before a valid API key was known (no usage event is written for them).",
    ["endpoint", "status"],
)
FALLBACKS = Counter("gateway_fallbacks_total", "Requests served by a deployment other than the first tried.", ["tier"])
CIRCUIT_STATE = Gauge(
    "gateway_circuit_state",
    "Circuit breaker state per deployment (0 closed, 1 half-open, 2 open).",
    ["deployment"],
    multiprocess_mode="mostrecent",
)


_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, kept: ``labels`` rebuilds its key and takes a lock on every call."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def observe(exchange: Exchange, latency_seconds: float) -> None:
    """Record one finished request."""
    deployment = exchange.deployment
    provider = deployment.provider.name if deployment else "none"
    model = deployment.name if deployment else "none"
    tier = exchange.tier or "none"
    _child(REQUESTS, provider, model, tier, str(exchange.status)).inc()
    _child(REQUEST_LATENCY, exchange.endpoint).observe(latency_seconds)
    for attempt in exchange.attempts:
        if "seconds" in attempt:
            _child(UPSTREAM_LATENCY, attempt["provider"], attempt["model"]).observe(attempt["seconds"])
        if "circuit" in attempt:
            _child(CIRCUIT_STATE, attempt["model"]).set(circuit.STATE_VALUES.get(attempt["circuit"], 0))
    if deployment is not None and exchange.attempts and exchange.attempts[0]["model"] != deployment.name:
        _child(FALLBACKS, tier).inc()
    if exchange.cache_status in ("HIT", "SEMANTIC"):
        _child(CACHE_HITS, exchange.cache_status.lower()).inc()
    usage = exchange.usage
    if usage is not None and deployment is not None:
        _child(TOKENS, provider, model, "input").inc(usage.prompt_tokens)
        _child(TOKENS, provider, model, "output").inc(usage.completion_tokens)
        tenant = exchange.key.tenant_slug if exchange.key else "none"
        _child(TENANT_TOKENS, tenant, "input").inc(usage.prompt_tokens)
        _child(TENANT_TOKENS, tenant, "output").inc(usage.completion_tokens)
        _child(COST, tenant, provider, model).inc(float(exchange.cost_usd))


def set_circuit_state(deployment: str, state: str) -> None:
    CIRCUIT_STATE.labels(deployment).set(circuit.STATE_VALUES.get(state, 0))


def observe_unauthenticated(exchange: Exchange) -> None:
    """Count a request that ended without a valid key (missing, wrong, revoked, or refused before auth)."""
    UNAUTHENTICATED.labels(exchange.endpoint, str(exchange.status)).inc()

"""The benchmark's data: 50 tenants (5 time zones), 4 teams and 20 keys each, 5 models, and N raw usage events.

Events are generated inside PostgreSQL (``INSERT ... SELECT generate_series``) in batches, in
``started_at`` order like real appends, spread evenly over the days; each picks a key and a
model by hashing its sequence number. About 2 % are errors, 15 % cache hits, 20 % carry
token-reduction savings.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata"]
MODELS = [  # name, provider, tier, USD per million input / output tokens
    ("deepseek-v3", "deepseek", "simple_ops", "0.27", "1.10"),
    ("qwen-3-coder-32b", "ollama", "simple_ops", "0", "0"),
    ("sonnet-4.5", "anthropic", "code_gen", "3", "15"),
    ("gpt-5.5", "openai", "complex_reasoning", "5", "20"),
    ("haiku-4.5", "anthropic", "simple_ops", "1", "5"),
]
BATCH = 1_000_000

_INSERT = """
WITH keys(idx, tenant_id, team_id, api_key_id) AS (
    SELECT * FROM unnest(%(k_idx)s::int[], %(k_tenant)s::bigint[], %(k_team)s::bigint[], %(k_key)s::bigint[])
), models(idx, name, provider, tier, price_in, price_out) AS (
    SELECT * FROM unnest(%(m_idx)s::int[], %(m_name)s::text[], %(m_provider)s::text[], %(m_tier)s::text[],
                         %(m_in)s::numeric[], %(m_out)s::numeric[])
), rows AS (
    SELECT g,
           %(start)s::timestamptz + (g - 1) * %(step)s * interval '1 microsecond' AS ts,
           (g * 2654435761) %% %(n_keys)s AS key_idx,
           (g * 40503) %% 5 AS model_idx,
           (g * 69069) %% 100 AS dice,
           200 + (g * 7) %% 4000 AS prompt,
           20 + (g * 13) %% 800 AS completion
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
)
INSERT INTO billing_usageevent (
    request_id, tenant_id, team_id, api_key_id, endpoint, requested_model, tier, model, provider,
    prompt_tokens, completion_tokens, tokens_estimated, cost_usd, latency_ms, status_code, error_code,
    cache_status, stream, client_disconnected, attempts, skill, route_reason, tokens_saved, cost_saved_usd,
    budget_status, guardrail, started_at, finished_at, recorded_at,
    client_request_id, cache_read_tokens, cache_write_tokens, prompt_cache_saved_usd, session
)
SELECT 'bench-' || r.g, k.tenant_id, k.team_id, k.api_key_id, 'chat.completions', m.tier, m.tier, m.name, m.provider,
       CASE WHEN r.dice < 2 THEN 0 ELSE r.prompt END,
       CASE WHEN r.dice < 17 THEN 0 ELSE r.completion END,
       false,
       CASE WHEN r.dice < 17 THEN 0 ELSE (r.prompt * m.price_in + r.completion * m.price_out) / 1000000 END,
       300 + r.dice * 20,
       CASE WHEN r.dice < 2 THEN 502 ELSE 200 END,
       CASE WHEN r.dice < 2 THEN 'upstream_error' ELSE '' END,
       CASE WHEN r.dice BETWEEN 2 AND 16 THEN 'HIT' ELSE 'MISS' END,
       r.dice %% 2 = 0, false, '[]'::jsonb, '', '{}'::jsonb,
       CASE WHEN r.dice >= 80 THEN jsonb_build_object('trim_context', r.prompt / 5) ELSE '{}'::jsonb END,
       CASE WHEN r.dice BETWEEN 2 AND 16 THEN (r.prompt * m.price_in + r.completion * m.price_out) / 1000000 ELSE 0 END,
       '', '', r.ts, r.ts + interval '800 milliseconds', r.ts + interval '1 second',
       '', 0, 0, 0, ''
FROM rows r JOIN keys k ON k.idx = r.key_idx JOIN models m ON m.idx = r.model_idx
"""


@dataclass(frozen=True, slots=True)
class World:
    tenants: int
    keys: int
    events: int
    start: datetime
    end: datetime


def create_world(
    tenants: int,
) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, str, str, str, Decimal, Decimal]]]:
    """Tenants, teams, keys, models, tiers and a premium baseline tier; returns the key and model tables."""
    from providers.models import Model, Provider
    from routing.models import RoutingPolicy, Tier, TierModel
    from tenants.models import Tenant
    from tests.factories import make_key, make_team

    providers = {
        p: Provider.objects.create(name=p, kind="openai", base_url="http://bench.invalid/v1")
        for p in sorted({m[1] for m in MODELS})
    }
    rows = []
    for idx, (name, provider, tier_name, price_in, price_out) in enumerate(MODELS):
        model = Model.objects.create(
            name=name,
            provider=providers[provider],
            upstream_model=name,
            input_cost_per_million=Decimal(price_in),
            output_cost_per_million=Decimal(price_out),
        )
        tier, _ = Tier.objects.get_or_create(name=tier_name, tenant=None)
        TierModel.objects.get_or_create(tier=tier, model=model, defaults={"position": tier.tier_models.count()})
        rows.append((idx, name, provider, tier_name, Decimal(price_in), Decimal(price_out)))
    RoutingPolicy.objects.create(tenant=None, baseline_tier="complex_reasoning")
    keys: list[tuple[int, int, int, int]] = []
    for t in range(tenants):
        for team_no in range(4):
            team = make_team(f"bench-{t:02d}", f"team-{team_no}")
            for _ in range(5):
                key = make_key(team)[0]
                keys.append((len(keys), team.tenant_id, team.pk, key.pk))
        Tenant.objects.filter(slug=f"bench-{t:02d}").update(timezone=ZONES[t % len(ZONES)])
    return keys, rows


def generate_events(count: int, days: int, end: datetime, keys: list, models: list) -> World:
    """``count`` events evenly over the ``days`` before ``end``, in batches of a million."""
    from django.db import connection

    start = end - timedelta(days=days)
    step = int(days * 86_400 * 1_000_000 / count)  # microseconds between events
    params: dict[str, Any] = {
        "k_idx": [k[0] for k in keys],
        "k_tenant": [k[1] for k in keys],
        "k_team": [k[2] for k in keys],
        "k_key": [k[3] for k in keys],
        "m_idx": [m[0] for m in models],
        "m_name": [m[1] for m in models],
        "m_provider": [m[2] for m in models],
        "m_tier": [m[3] for m in models],
        "m_in": [m[4] for m in models],
        "m_out": [m[5] for m in models],
        "n_keys": len(keys),
        "start": start,
        "step": step,
    }
    for first in range(1, count + 1, BATCH):
        last = min(count, first + BATCH - 1)
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(_INSERT, {**params, "first": first, "last": last})
        print(f"  events {first:,}-{last:,}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE billing_usageevent")
    return World(len({k[1] for k in keys}), len(keys), count, start, end)

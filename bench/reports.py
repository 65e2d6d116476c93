"""Report pages on a large rollup table: p95 render time of every `/reports/` page.

Generates, inside PostgreSQL (``generate_series``, no Python loop over rows), usage rollups
for 50 tenants x 90 days: per tenant 4 teams, 20 keys and 5 models; each (key, model) pair is
active in an hour with a probability that follows the working day, hour rows for every
active hour and tenant-local day rows for every closed day, like ``billing.rollups`` writes
them. Then renders each page N times with Django's test client (in-process: view, queries and
template, no HTTP server) as a tenant admin, and the overview also as a superuser over all
tenants, and reports p50/p95/max and the queries per page. Target: p95 <= 300 ms.

Run: ``.venv/bin/python -m bench.reports [--tenants 50] [--days 90] [--requests 30]``
(a fresh embedded PostgreSQL under ``var/bench-reports``; about five minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import procs, stack
from bench import report as bench_report

VAR_DIR = procs.BASE_DIR / "var" / "bench-reports"
DOC = procs.BASE_DIR / "docs" / "benchmarks-reports.md"
LOAD: list[float] = []  # 1-minute load average before and after the measurements
SERVERS: dict[str, str] = {}  # PostgreSQL and Redis versions of this run
TEAMS_PER_TENANT = 4
KEYS_PER_TEAM = 5
TARGET_MS = 300.0
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London"]
# name, provider, tier, USD per million input / output tokens, relative popularity
MODELS = [
    ("deepseek-v3", "deepseek", "simple_ops", 0.27, 1.10, 1.0),
    ("qwen-3-coder-32b", "ollama", "simple_ops", 0.0, 0.0, 0.6),
    ("sonnet-4.5", "anthropic", "code_gen", 3.0, 15.0, 0.8),
    ("gpt-5.5", "openai", "complex_reasoning", 5.0, 20.0, 0.4),
    ("haiku-4.5", "anthropic", "simple_ops", 1.0, 5.0, 0.7),
]

_HOURS_SQL = """
WITH keys(tenant_id, team_id, api_key_id, weight) AS (
    SELECT * FROM unnest(%(tenants)s::bigint[], %(teams)s::bigint[], %(keys)s::bigint[], %(weights)s::float8[])
), models(name, provider, tier, price_in, price_out, popularity) AS (
    SELECT * FROM unnest(%(m_names)s::text[], %(m_providers)s::text[], %(m_tiers)s::text[],
                         %(m_in)s::numeric[], %(m_out)s::numeric[], %(m_pop)s::float8[])
), active AS (
    SELECT h, k.*, m.*, 1 + floor(random() * 40 * k.weight)::int AS requests
    FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour', interval '1 hour') AS h
    CROSS JOIN keys k CROSS JOIN models m
    -- busy during the (UTC) working day, quiet at night and at weekends
    WHERE random() < %(activity)s * m.popularity * k.weight
        * CASE WHEN extract(isodow FROM h) > 5 THEN 0.25
               WHEN extract(hour FROM h) BETWEEN 7 AND 18 THEN 1.0 ELSE 0.2 END
), measured AS (
    SELECT a.*, a.requests * (400 + floor(random() * 3000))::bigint AS prompt,
           a.requests * (80 + floor(random() * 700))::bigint AS completion,
           floor(a.requests * random() * 0.35)::int AS hits
    FROM active a
)
INSERT INTO billing_usagerollup (
    granularity, period_start, tenant_id, team_id, api_key_id, model, provider, tier, requests, errors,
    prompt_tokens, completion_tokens, cost_usd, cache_hits, saved_by_cache_usd, saved_by_routing_usd,
    saved_by_reduction_usd, tokens_saved, cache_read_tokens, cache_write_tokens, saved_by_prompt_cache_usd
)
SELECT 'hour', h, tenant_id, team_id, api_key_id, name, provider, tier, requests,
       floor(requests * random() * 0.04)::int, prompt, completion,
       (prompt * price_in + completion * price_out) / 1000000,
       hits,
       hits * (prompt * price_in + completion * price_out) / 1000000 / requests,
       (prompt * price_in + completion * price_out) / 1000000 * random() * 0.4,
       prompt * 0.06 * price_in / 1000000,
       floor(prompt * 0.06)::bigint, 0, 0, 0
FROM measured
ORDER BY h, tenant_id  -- the physical order the rollup task produces: period by period
"""

_DAYS_SQL = """
WITH hours AS (
    SELECT r.*, date_trunc('day', r.period_start AT TIME ZONE t.timezone) AT TIME ZONE t.timezone AS day,
           date_trunc('day', %(now)s::timestamptz AT TIME ZONE t.timezone) AT TIME ZONE t.timezone AS today
    FROM billing_usagerollup r JOIN tenants_tenant t ON t.id = r.tenant_id
    WHERE r.granularity = 'hour'
)
INSERT INTO billing_usagerollup (
    granularity, period_start, tenant_id, team_id, api_key_id, model, provider, tier, requests, errors,
    prompt_tokens, completion_tokens, cost_usd, cache_hits, saved_by_cache_usd, saved_by_routing_usd,
    saved_by_reduction_usd, tokens_saved, cache_read_tokens, cache_write_tokens, saved_by_prompt_cache_usd
)
SELECT 'day', day, tenant_id, team_id, api_key_id, model, provider, tier, sum(requests), sum(errors),
       sum(prompt_tokens), sum(completion_tokens), sum(cost_usd), sum(cache_hits), sum(saved_by_cache_usd),
       sum(saved_by_routing_usd), sum(saved_by_reduction_usd), sum(tokens_saved), 0, 0, 0
FROM hours
WHERE day < today  -- closed days only: today lives in hour rows until the nightly close
GROUP BY day, tenant_id, team_id, api_key_id, model, provider, tier
ORDER BY day, tenant_id
"""


@dataclass(frozen=True)
class Dataset:
    tenants: int
    days: int
    hour_rows: int
    day_rows: int
    seconds: float
    table_mb: float


def generate(tenants: int, days: int, activity: float) -> Dataset:
    """Tenants, teams, keys and budgets through the ORM; the rollup rows in SQL."""
    from django.db import connection
    from django.utils import timezone

    from billing.models import Budget
    from tenants.models import ApiKey, Team, Tenant

    started = time.monotonic()
    now = timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=days)
    tenant_rows = Tenant.objects.bulk_create(
        Tenant(slug=f"bench-{i:02d}", name=f"Bench tenant {i:02d}", timezone=ZONES[i % len(ZONES)])
        for i in range(tenants)
    )
    teams = Team.objects.bulk_create(
        Team(tenant=t, slug=f"team-{j}", name=f"Team {j}") for t in tenant_rows for j in range(TEAMS_PER_TENANT)
    )
    keys = ApiKey.objects.bulk_create(
        ApiKey(team=team, name=f"key-{team.tenant.slug}-{team.slug}-{n}", prefix=f"gw-{team.pk:04d}{n}",
               key_hash=f"{team.pk:032x}{n:032x}")
        for team in teams for n in range(KEYS_PER_TEAM)
    )  # fmt: skip
    weights = [0.3 + (k.pk * 7919 % 100) / 100 for k in keys]  # some keys busier than others
    budgets = []
    for tenant in tenant_rows:
        budgets.append(Budget(tenant=tenant, amount_usd=5000))
    for team in teams:
        budgets.append(Budget(team=team, amount_usd=1500, period=Budget.Period.MONTHLY))
    for key in keys[::4]:
        budgets.append(Budget(api_key=key, amount_usd=40, period=Budget.Period.DAILY))
    Budget.objects.bulk_create(budgets)
    models: dict[str, list[str] | list[float]] = {
        "m_names": [m[0] for m in MODELS],
        "m_providers": [m[1] for m in MODELS],
        "m_tiers": [m[2] for m in MODELS],
        "m_in": [m[3] for m in MODELS],
        "m_out": [m[4] for m in MODELS],
        "m_pop": [m[5] for m in MODELS],
    }
    with connection.cursor() as cursor:
        cursor.execute(
            _HOURS_SQL,
            {
                "tenants": [k.team.tenant_id for k in keys],
                "teams": [k.team_id for k in keys],
                "keys": [k.pk for k in keys],
                "weights": weights,
                "start": start,
                "end": end,
                "activity": activity,
                **models,
            },
        )
        cursor.execute(_DAYS_SQL, {"now": now})
        cursor.execute("VACUUM ANALYZE billing_usagerollup")
        cursor.execute("SELECT granularity, count(*) FROM billing_usagerollup GROUP BY 1")
        counts = dict(cursor.fetchall())
        cursor.execute("SELECT pg_total_relation_size('billing_usagerollup') / 1048576.0")
        size = float(cursor.fetchone()[0])
    return Dataset(tenants, days, counts.get("hour", 0), counts.get("day", 0), time.monotonic() - started, size)


@dataclass(frozen=True)
class Timing:
    page: str
    user: str
    url: str
    p50_ms: float
    p95_ms: float
    max_ms: float
    queries: int
    status: int


def _measure(client: object, page: str, user: str, url: str, requests: int) -> Timing:
    from django.db import connection

    for _ in range(3):  # warm caches, template loading, the pool
        client.get(url)  # type: ignore[attr-defined]
    # Django empties the query log when a request starts, so after one it holds that request's queries.
    connection.force_debug_cursor = True
    try:
        status = client.get(url).status_code  # type: ignore[attr-defined]
        queries = len(connection.queries)
    finally:
        connection.force_debug_cursor = False
    samples = []
    for _ in range(requests):
        t0 = time.perf_counter()
        client.get(url)  # type: ignore[attr-defined]
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return Timing(page, user, url, statistics.median(samples), p95, samples[-1], queries, status)


def measure(requests: int) -> list[Timing]:
    """Every page as the admin of one tenant (default range: this month), plus wider ranges and scopes."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    SERVERS.update(bench_report.server_versions())

    from tenants.models import Team, Tenant, TenantRole

    tenant = Tenant.objects.get(slug="bench-01")  # Europe/Berlin
    team = Team.objects.filter(tenant=tenant).first()
    users = get_user_model().objects
    admin, _ = users.get_or_create(username="bench-admin")
    TenantRole.objects.get_or_create(tenant=tenant, user=admin, role=TenantRole.Role.ADMIN)
    root, _ = users.get_or_create(username="bench-root", defaults={"is_superuser": True, "is_staff": True})
    clients = {}
    for name, user in (("tenant admin", admin), ("superuser", root)):
        clients[name] = Client(SERVER_NAME="localhost")
        clients[name].force_login(user)
    today = timezone.now().date()
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    ninety = f"start={(today - timedelta(days=89)).isoformat()}&end={today.isoformat()}"
    pages = [
        ("overview (month to date)", "tenant admin", "/reports/"),
        ("overview (90 days)", "tenant admin", f"/reports/?{ninety}"),
        ("overview (last 2 days, hour rows)", "tenant admin", f"/reports/?start={today - timedelta(days=1)}"),
        ("by team", "tenant admin", "/reports/teams/"),
        ("by key", "tenant admin", "/reports/keys/"),
        ("by key (90 days)", "tenant admin", f"/reports/keys/?{ninety}"),
        ("by model", "tenant admin", "/reports/models/"),
        ("by provider", "tenant admin", "/reports/providers/"),
        ("by tier", "tenant admin", "/reports/tiers/"),
        ("top keys", "tenant admin", "/reports/top-keys/"),
        ("budgets (burn-down)", "tenant admin", "/reports/budgets/"),
        ("by model, one team", "tenant admin", f"/reports/models/?team={team.pk}" if team else "/reports/models/"),
        ("statement (last month)", "tenant admin", f"/reports/statement/{tenant.slug}/{last_month}/"),
        ("CSV by key (90 days)", "tenant admin", f"/reports/csv/by-keys/?{ninety}"),
        ("overview, all tenants", "superuser", "/reports/"),
        ("by tenant, all tenants (90 days)", "superuser", f"/reports/tenants/?{ninety}"),
    ]
    results = []
    load_before = os.getloadavg()[0]
    for page, role, url in pages:
        timing = _measure(clients[role], page, role, url, requests)
        print(
            f"{page:36} p50 {timing.p50_ms:7.1f} ms  p95 {timing.p95_ms:7.1f} ms  {timing.queries} queries",
            file=sys.stderr,
        )
        results.append(timing)
    LOAD.extend([load_before, os.getloadavg()[0]])
    return results


def describe() -> Dataset:
    """The dataset already in the database (``--reuse``)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_tenant WHERE slug LIKE 'bench-%%'")
        tenants = cursor.fetchone()[0]
        cursor.execute("SELECT granularity, count(*) FROM billing_usagerollup GROUP BY 1")
        counts = dict(cursor.fetchall())
        cursor.execute("SELECT extract(day FROM max(period_start) - min(period_start)) + 1 FROM billing_usagerollup")
        days = int(cursor.fetchone()[0] or 0)
        cursor.execute("SELECT pg_total_relation_size('billing_usagerollup') / 1048576.0")
        size = float(cursor.fetchone()[0])
    return Dataset(tenants, days, counts.get("hour", 0), counts.get("day", 0), 0.0, size)


@contextlib.contextmanager
def existing_services(var_dir: Path) -> Iterator[None]:
    """The embedded servers of a previous run, data kept (``--reuse``)."""
    import django

    from gateway_platform import embedded

    os.environ.update(
        DJANGO_SETTINGS_MODULE="gateway_platform.settings",
        GATEWAY_VAR_DIR=str(var_dir),
        DATABASE_URL=embedded.postgres_url(var_dir),
        REDIS_URL=embedded.redis_url(var_dir),
        LOG_LEVEL="WARNING",
        LOG_FORMAT="console",
    )
    django.setup()
    try:
        yield
    finally:
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            conn.close()
            conn.close_pool()  # type: ignore[attr-defined]
        embedded.stop(var_dir)


def write_report(dataset: Dataset, timings: list[Timing], requests: int) -> str:
    """The results as the Markdown kept in ``docs/benchmarks-reports.md``."""
    worst = max(t.p95_ms for t in timings)
    lines = [
        "# Report pages: render time on a large rollup table",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m bench.reports --requests {requests}` on "
        f"{platform.machine()} with {os.cpu_count() or 1} cores, Python {platform.python_version()}, embedded "
        f"PostgreSQL {SERVERS.get('postgresql', '?')} with its default settings (no tuning). "
        f"Machine load (1-minute average) {LOAD[0]:.1f} before and {LOAD[1]:.1f} after the measurements"
        + (" (other work was running: the times are inflated)." if max(LOAD) > 1.5 else "."),
        "",
        "## Data",
        "",
        f"- {dataset.tenants} tenants x {dataset.days} days; per tenant {TEAMS_PER_TENANT} teams, "
        f"{TEAMS_PER_TENANT * KEYS_PER_TEAM} keys, {len(MODELS)} models "
        "(every key may use every model; a pair is active in an hour with a probability that follows the working day).",
        f"- {dataset.hour_rows:,} hour rows and {dataset.day_rows:,} tenant-local day rows "
        f"({dataset.table_mb:,.0f} MB with indexes), generated in PostgreSQL in {dataset.seconds:.0f} s.",
        "- Budgets: one monthly per tenant and per team, a daily one on every fourth key.",
        "",
        "## Render time",
        "",
        f"Each page rendered {requests} times after 3 warm-up requests with Django's test client in one "
        "process (URL routing, middleware, session, the queries and the template; no HTTP server). "
        f"Target: p95 <= {TARGET_MS:.0f} ms.",
        "",
        "| Page | User | p50 ms | p95 ms | max ms | Queries |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for t in timings:
        lines.append(f"| {t.page} | {t.user} | {t.p50_ms:.1f} | {t.p95_ms:.1f} | {t.max_ms:.1f} | {t.queries} |")
    over = [t for t in timings if t.p95_ms > TARGET_MS]
    overview_queries = next(t.queries for t in timings if t.page.startswith("overview"))
    scoped = [t for t in timings if t.user == "tenant admin"]
    lines += [
        "",
        f"Tenant-scoped pages (what tenant admins and finance users see): slowest p95 "
        f"{max(t.p95_ms for t in scoped):.1f} ms. Slowest p95 overall: {worst:.1f} ms.",
    ]
    if over:
        lines += [
            "",
            f"Over the {TARGET_MS:.0f} ms target: " + ", ".join(f"{t.page} ({t.p95_ms:.0f} ms)" for t in over) + ". "
            "These are a superuser's views over every tenant: they aggregate every tenant's rows of the range "
            f"(about {dataset.day_rows * 30 // max(1, dataset.days):,} day rows for a month, "
            f"{dataset.day_rows:,} for {dataset.days} days), and summing that many `numeric` "
            "columns takes PostgreSQL hundreds of milliseconds on two cores whatever the index. Making them "
            "fast needs fewer rows, not a better query: a per-tenant-per-day rollup without the team, key, "
            f"model, provider and tier dimensions ({dataset.tenants} tenants x {dataset.days} days = "
            f"{dataset.tenants * dataset.days:,} rows), written by the rollup "
            "task next to the day rows, which the all-tenant overview and tenant table would read.",
        ]
    lines += [
        "",
        "Why the tenant pages are fast: pages read rollups only; each table is one `GROUP BY` over the rows "
        "of one tenant and period found through the `(granularity, tenant, period_start)` index; ranges over "
        "two days read day rows of closed days (found by one query of index probes) and hour rows only for "
        "the days not closed yet and the ragged edges; per-day numbers are grouped by the stored instant and "
        "put on local dates in Python; names of keys and teams are looked up in one query per table; the "
        f"overview runs a fixed number of queries ({overview_queries}).",
        "",
        bench_report.provenance_line(),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--activity", type=float, default=0.5, help="chance a key/model pair is used in a busy hour")
    parser.add_argument("--requests", type=int, default=30, help="timed renders per page")
    parser.add_argument("--reuse", action="store_true", help="measure the data of the previous run again")
    parser.add_argument("--output", type=Path, default=DOC, help="Markdown report ('-' for stdout only)")
    args = parser.parse_args()
    if args.reuse and (VAR_DIR / "pg").exists():
        with existing_services(VAR_DIR):
            dataset = describe()
            timings = measure(args.requests)
    else:
        with stack.backing_services(VAR_DIR):
            print(f"generating rollups for {args.tenants} tenants x {args.days} days ...", file=sys.stderr)
            dataset = generate(args.tenants, args.days, args.activity)
            timings = measure(args.requests)
    report = write_report(dataset, timings, args.requests)
    print(report)
    raw = {"dataset": asdict(dataset), "load": LOAD, "servers": SERVERS, "timings": [asdict(t) for t in timings]}
    bench_report.write("reports", raw, report)
    if str(args.output) != "-":
        args.output.write_text(report)


if __name__ == "__main__":
    main()

"""Billing benchmark: rollups and budget seeding on N raw usage events, and the admission hot path.

Run: ``.venv/bin/python -m bench.billing [--events 1000000] [--days 90] [--tenants 50] [--calls 20000]``
(a fresh embedded PostgreSQL and Redis under ``var/bench-billing``; ``--reuse`` measures the data of
the previous run again). ``--events`` is the size: the default fits a 2-core machine in a few
minutes; production-sized tables (10M+) take about an hour here. Writes the raw results to
``docs/results/billing.json`` and the ``billing`` section of ``docs/benchmarks-billing.md``
(between ``<!-- billing:start -->`` and ``<!-- billing:end -->``; other sections of the page,
written by other commands, are left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import docs, procs, report, stack
from bench.billing import data, hotpath

VAR_DIR = procs.BASE_DIR / "var" / "bench-billing"
DOC = procs.BASE_DIR / "docs" / "benchmarks-billing.md"
SECTION = "billing"  # <!-- billing:start --> ... <!-- billing:end --> (bench.docs.replace_section)
DEFAULT_EVENTS = 1_000_000
END = datetime(2026, 11, 1, tzinfo=UTC)  # fixed, so runs are comparable; all days are closed
LOAD: list[float] = []


def _timed(fn: Callable[[], Any], repeat: int = 3) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples)}


def _explain(sql: str, params: list[Any]) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def measure_database(world: data.World) -> dict[str, Any]:
    """Rollup and seeding times on the generated events, with the plans that make them fast."""
    from django.db import connection

    from billing import rollups, spend
    from billing.limits import BudgetInfo
    from billing.periods import period_containing
    from tenants.models import ApiKey, Tenant

    day = (world.end - timedelta(days=3)).date()
    busy_hour = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=14)
    results: dict[str, Any] = {
        "rollup_hour": _timed(lambda: rollups.rollup_hour(hour=busy_hour)),
        "rollup_day_all_tenants": _timed(lambda: rollups.rollup_day(day=day)),
    }
    tenant = Tenant.objects.filter(slug__startswith="bench-").order_by("pk").first()
    key = ApiKey.objects.filter(team__tenant=tenant).order_by("pk").first()
    assert tenant is not None and key is not None
    now = world.end - timedelta(hours=1)
    for label, scope, scope_id, period in (
        ("seed_tenant_month", "tenant", tenant.pk, "monthly"),
        ("seed_key_month", "key", key.pk, "monthly"),
        ("seed_tenant_total_90_days", "tenant", tenant.pk, "total"),
    ):
        info = BudgetInfo(1, scope, scope_id, "bench", Decimal(1), period, "block", "UTC")
        bounds = period_containing(period, "UTC", now)
        results[label] = _timed(functools.partial(spend.budget_spend, budget=info, period=bounds, now=now))
    month = period_containing("monthly", "UTC", now)
    results["plans"] = {
        "hour_range_scan": _explain(
            "SELECT count(*), sum(cost_usd) FROM billing_usageevent WHERE started_at >= %s AND started_at < %s",
            [busy_hour, busy_hour + timedelta(hours=1)],
        ),
        "seed_tenant_month": _explain(
            "SELECT sum(cost_usd) FROM billing_usageevent"
            " WHERE tenant_id = %s AND started_at >= %s AND started_at <= %s",
            [tenant.pk, month.start, now],
        ),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_relation_size(c.oid) / 1048576.0 FROM pg_class c "
            "WHERE relname LIKE 'billing_usageevent%%' OR relname LIKE 'usage_%%' ORDER BY 2 DESC"
        )
        results["sizes_mb"] = {name: round(float(size), 1) for name, size in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM billing_usagerollup")
        results["rollup_rows"] = cursor.fetchone()[0]
    return results


@contextlib.contextmanager
def existing_services(var_dir: Path) -> Iterator[None]:
    """The embedded servers and data of a previous run (``--reuse``)."""
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
        stack._close_django_connections()
        embedded.stop(var_dir)


def _world_of_database(days: int) -> data.World:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT tenant_id), count(DISTINCT api_key_id) FROM billing_usageevent")
        events, tenants, keys = cursor.fetchone()
    return data.World(tenants, keys, events, END - timedelta(days=days), END)


NOTES = """
### What the numbers mean

- **Hot path.** Admission is one `EVALSHA` before the upstream call (check every RPM/TPM window
  and every budget above the request, then charge and reserve all or nothing) and one after it
  (settle to the actual cost, charge completion tokens). The time *inside Redis* is the cost the
  design controls; the client-side p99 on a shared 2-core machine also contains event-loop and
  scheduler noise from everything else running (compare the load average).
- **The kill window.** The usage record is now `XADD`ed before the answer's final body chunk
  instead of after it, so a SIGKILL right after the client has its answer cannot lose it
  (`tests/billing/test_usage_kill.py` fails with the old order). The price is the XADD row above,
  paid once per request before its last bytes.
- **No partitioning.** A monthly-partitioned table cannot enforce `UNIQUE (request_id)` (a
  unique index on a partitioned table must contain the partition key), and the drain's
  exactly-once write relies on it. Time-range reads use B-tree indexes instead: `(started_at)`
  for rollups and retention, and `(tenant|team|api_key, started_at) INCLUDE (cost_usd[, model])`
  for budget seeding ({plans}). Retention (`GATEWAY_USAGE_RETENTION_DAYS`) keeps the table bounded.
- **Rollups** are recomputed per period with one `INSERT … SELECT … GROUP BY` under an advisory
  lock (delete + insert in one transaction). The beat recomputes the current hour every minute;
  a day is written for every tenant in its own time zone once it is over.
- **Seeding** a budget period from PostgreSQL happens once per budget and period (the first
  request of a period, a budget created mid-period, or a Redis that lost its data); everything
  else is Redis.
"""


def _plan_reading(plans: dict[str, str]) -> str:
    """What the measured plans show, in words (the page must not claim a plan the run did not get)."""
    index_only = [name for name, plan in plans.items() if "Index Only Scan" in plan]
    if len(index_only) == len(plans):
        return "the plans below show both reads as index-only scans touching only the range asked for"
    if not index_only:
        return "at this size the planner chose other plans than index-only scans (see the plans below)"
    return "the plans below show an index-only scan for " + ", ".join(index_only) + " only"


def _hotpath_reading(latencies: list[hotpath.Latency]) -> str:
    """How the 32-in-flight rows compare with one in flight, from the measured calls/s."""
    by_name = {r.name: r for r in latencies}
    ping_1, ping_32 = by_name.get(f"{hotpath.PING}, 1 in flight"), by_name.get(f"{hotpath.PING}, 32 in flight")
    if ping_1 is None or ping_32 is None:
        return ""
    gain = ping_32.per_second / ping_1.per_second
    said = (
        f" Going from 1 to 32 PINGs in flight changed calls/s by {gain:.1f}× while the p50 went from "
        f"{ping_1.p50_ms:.2f} to {ping_32.p50_ms:.2f} ms"
    )
    if gain < 2:
        return said + ": the benchmark's single Python event loop is the limit there, so read those rows as throughput."
    return said + "."


def section_lines(
    world: data.World, db: dict[str, Any], latencies: list[hotpath.Latency], generate_s: float | None
) -> list[str]:
    """The generated section of the page, from this run's results."""
    days = (world.end - world.start).days
    rows = [
        ("Roll up one busy UTC hour (all tenants)", db["rollup_hour"]),
        (f"Roll up one day (every tenant's local day, {len(data.ZONES)} time zones)", db["rollup_day_all_tenants"]),
        ("Seed a tenant's monthly budget from PostgreSQL", db["seed_tenant_month"]),
        ("Seed a key's monthly budget", db["seed_key_month"]),
        (f"Seed a tenant's total budget ({days} days of raw events)", db["seed_tenant_total_90_days"]),
    ]
    return [
        f"Generated by `.venv/bin/python -m bench.billing --events {world.events} --days {days} "
        f"--tenants {world.tenants}` ({platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, PostgreSQL {db['servers']['postgresql']} and Redis "
        f"{db['servers']['redis']} on Unix sockets). Raw results: `docs/results/billing.json`.",
        "",
        f"**Size of this run: {world.events:,} raw usage events** over {days} days, "
        f"{world.tenants} tenants, {world.keys} keys, {db['models']} models"
        + (f"; generated in {generate_s:.0f} s with `INSERT ... SELECT generate_series`." if generate_s else ".")
        + " The size is `--events`: the times below hold for this size, not for a larger table; "
        "re-run with a larger `--events` to measure one.",
        "",
        "### Rollups and budget seeding",
        "",
        report.table(
            ["Operation", "median (ms)", "min (ms)", "max (ms)"],
            [(name, t["median_s"] * 1000, t["min_s"] * 1000, t["max_s"] * 1000) for name, t in rows],
        ),
        "",
        f"Rollup rows after the runs: {db['rollup_rows']:,}. Relation sizes (MB): "
        + ", ".join(f"`{k}` {v}" for k, v in db["sizes_mb"].items())
        + ".",
        "",
        "### Admission on the hot path (local Redis)",
        "",
        report.table(
            ["Call", "calls", "p50 (ms)", "p99 (ms)", "max (ms)", "inside Redis (µs/call)", "calls/s"],
            [(r.name, r.calls, r.p50_ms, r.p99_ms, r.max_ms, r.redis_us_per_call, r.per_second) for r in latencies],
        ),
        "",
        f"Load average (1 min) before and after the hot-path runs: {LOAD[0]:.2f} / {LOAD[-1]:.2f} "
        f"on {os.cpu_count()} cores. Other work on the machine shows up in the client-side p99 — compare "
        "the PING row, one bare round trip — but not in the time inside Redis." + _hotpath_reading(latencies),
        "",
        NOTES.strip().replace("{plans}", _plan_reading(db["plans"])),
        "",
        "### Plans",
        "",
        "One hour of events (what an hour rollup reads):",
        "",
        "```",
        db["plans"]["hour_range_scan"],
        "```",
        "",
        "A tenant's spend this month (what seeding an unseeded budget period reads):",
        "",
        "```",
        db["plans"]["seed_tenant_month"],
        "```",
        "",
        report.provenance_line(),
    ]


PAGE_HEAD = """# Billing benchmarks

Each section of this page is written by the command it names, from that run's raw results;
a command rewrites only its own section (between its `<!-- name:start -->` / `<!-- name:end -->`
markers).

## Rollups, budget seeding and admission — `python -m bench.billing`
"""


def write_page(path: Path, lines: list[str]) -> None:
    """Replace this benchmark's section of the page; a page without the section starts afresh."""
    if not path.exists() or f"<!-- {SECTION}:start -->" not in path.read_text(encoding="utf-8"):
        path.write_text(PAGE_HEAD, encoding="utf-8")
    docs.replace_section(path, SECTION, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="raw usage events to generate (the size)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--calls", type=int, default=20_000, help="timed admissions per variant")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--reuse", action="store_true", help="measure the data of the previous run again")
    parser.add_argument("--output", type=Path, default=DOC, help="Markdown report ('-': stdout only)")
    args = parser.parse_args()
    generate_s = None
    services = existing_services(VAR_DIR) if args.reuse and (VAR_DIR / "pg").exists() else None
    with services or stack.backing_services(VAR_DIR):
        if services is None:
            began = time.perf_counter()
            print(f"generating {args.events:,} events ...", file=sys.stderr)
            keys, models = data.create_world(args.tenants)
            world = data.generate_events(args.events, args.days, END, keys, models)
            generate_s = time.perf_counter() - began
        else:
            world = _world_of_database(args.days)
        print("measuring rollups and seeding ...", file=sys.stderr)
        db = measure_database(world)
        from providers.models import Model

        db["servers"] = report.server_versions()
        db["models"] = Model.objects.count()
        print("measuring admission ...", file=sys.stderr)
        LOAD.append(os.getloadavg()[0])
        latencies = asyncio.run(hotpath.measure(args.calls, args.concurrency))
        LOAD.append(os.getloadavg()[0])
    lines = section_lines(world, db, latencies, generate_s)
    markdown = "\n".join(lines)
    print(markdown)
    report.write(
        "billing",
        {
            "world": asdict(world),
            "generate_s": generate_s,
            "load": LOAD,
            "database": db,
            "latencies": [asdict(x) for x in latencies],
        },
        markdown,
    )
    if str(args.output) != "-":
        write_page(args.output, lines)


if __name__ == "__main__":
    main()

"""Capacity figures for docs/scaling.md, measured on this machine.

``python -m bench.scaling`` starts embedded PostgreSQL and Redis, the mock upstream and one
``python -m gateway_platform serve`` process (uvicorn, one worker), then measures:

- requests/s of that one web process (non-streaming chat through a tier, 16 concurrent);
- Redis commands and PostgreSQL writes per request on the hot path (INFO commandstats and
  pg_stat_database deltas over the measured phase; no Celery runs meanwhile);
- drain throughput: the records that phase queued, moved into PostgreSQL by ``usage.drain()``,
  and PostgreSQL rows written per record;
- resident memory of the web process and of a ``python -m gateway_platform worker``.

It rewrites docs/scaling.md (measured table + what it implies). Numbers vary with the machine
and its neighbours by up to 3x: compare ratios within one run.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import orjson
import psutil

from bench import load, procs, report, stack

VAR_DIR = procs.BASE_DIR / "var" / "bench-scaling"
DOC = procs.BASE_DIR / "docs" / "scaling.md"
DURATION = 10.0
CONCURRENCY = 16


def _pg_counters() -> dict[str, int]:
    from django.db import connection

    # Backends flush their statistics to pg_stat_database at most once a second, idle ones within
    # 10 s (PGSTAT_IDLE_INTERVAL): wait that long so every write of the phase is counted.
    time.sleep(11)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        commits, inserted, updated, deleted = cursor.fetchone()
    return {"commits": commits, "rows_written": inserted + updated + deleted}


def _rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
    return round(total / 2**20, 1)


def measure() -> dict[str, float | int | str]:
    from billing import usage
    from gateway_platform.redis_clients import sync_client

    results: dict[str, float | int | str] = {"load_average_before": round(os.getloadavg()[0], 2)}
    with stack.backing_services(VAR_DIR) as backing, stack.mock_upstream(backing.env, backing.logs) as (_, mock):
        secret = stack.create_fixtures(mock)
        port = procs.free_port()
        env = {
            **backing.env,
            "GATEWAY_LOCAL": "1",
            "GATEWAY_SERVER": "uvicorn",
            "GATEWAY_WEB_WORKERS": "1",
            "PORT": str(port),
        }
        web = procs.start([procs.PYTHON, "-m", "gateway_platform", "serve"], env, backing.logs / "serve.log")
        url = f"http://127.0.0.1:{port}"
        try:
            procs.wait_for_http(f"{url}/live", web)
            body = {"model": stack.TIER, "messages": [{"role": "user", "content": "How do gateways scale?"}]}
            target = load.Target(
                url=f"{url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
                body=orjson.dumps(body),
                stream=False,
            )
            asyncio.run(load.run(target, concurrency=4, duration=0, warmup=2, max_requests=10**9))
            stack.trim_usage()
            redis_before, pg_before = stack.redis_command_counts(), _pg_counters()
            samples = asyncio.run(
                load.run(target, concurrency=CONCURRENCY, duration=DURATION, warmup=0, max_requests=10**9)
            )
            redis_after, pg_after = stack.redis_command_counts(), _pg_counters()
            summary = load.summarise(samples)
            done = int(summary["requests"])
            results |= {
                "requests": done,
                "errors": int(summary["errors"]),
                "rps_per_process": round(float(summary["rps"]), 1),
                "p50_ms": round(float(summary["p50_ms"]), 1),
                "p99_ms": round(float(summary["p99_ms"]), 1),
                "redis_commands_per_request": round(
                    (sum(redis_after.values()) - sum(redis_before.values())) / max(done, 1), 2
                ),
                "pg_commits_per_request_hot_path": round(
                    (pg_after["commits"] - pg_before["commits"]) / max(done, 1), 3
                ),
                "web_rss_mb": _rss_mb(web.pid),
            }
        finally:
            procs.stop(web)

        queued = int(sync_client().xlen(usage.STREAM))
        pg_before = _pg_counters()
        started = time.perf_counter()
        drained = 0
        while sync_client().xlen(usage.STREAM):
            drained += usage.drain()
        seconds = time.perf_counter() - started
        pg_after = _pg_counters()
        results |= {
            "drained_records": queued,
            "drain_records_per_second": round(queued / seconds, 0) if seconds else 0,
            "pg_rows_written_per_record": round(
                (pg_after["rows_written"] - pg_before["rows_written"]) / max(queued, 1), 2
            ),
        }

        worker = procs.start([procs.PYTHON, "-m", "gateway_platform", "worker"], {**env, "CELERY_CONCURRENCY": "1"},
                             backing.logs / "worker.log")  # fmt: skip
        try:
            time.sleep(8)
            results["worker_rss_mb"] = _rss_mb(worker.pid)
        finally:
            procs.stop(worker)
    info = procs.machine_info()
    results["machine"] = f"{info.get('nproc', '?')} CPUs, {info.get('cpu_model', '?')}"
    results["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return results


def render(r: dict[str, float | int | str]) -> str:
    rps = float(r["rps_per_process"]) or 1.0
    redis_per = float(r["redis_commands_per_request"])
    rows_per = float(r["pg_rows_written_per_record"])
    drain = float(r["drain_records_per_second"]) or 1.0

    def plan(target: int) -> str:
        processes = -(-target // int(rps))
        redis_ops = int(target * redis_per)
        pg_rows = int(target * rows_per)
        drainers = -(-target // int(drain))
        return (
            f"| {target:,} | {processes:,} web processes (~{-(-processes // 8)} hosts of 8 cores) | "
            f"{redis_ops:,} commands/s | {pg_rows:,} rows/s, {drainers:,} draining worker(s) |"
        )

    return f"""# Scaling notes

Measured by `python -m bench.scaling` ({r["measured_at"]}; {r["machine"]}; load average
{r["load_average_before"]} when it started), which rewrites this page.
One `python -m gateway_platform serve` process (uvicorn, one worker) in front of the bundled mock
upstream, embedded PostgreSQL and Redis on the same machine, non-streaming chat through a tier,
{CONCURRENCY} concurrent clients for {DURATION:.0f} s. Raw results: `docs/results/scaling.json`.
Requests/s and latencies depend on what else the machine ran (see the load average); the
per-request counts do not.

| Measured | Value |
| --- | --- |
| Requests/s of one web process | {r["rps_per_process"]} (p50 {r["p50_ms"]} ms, p99 {r["p99_ms"]} ms) |
| Requests measured (errors) | {r["requests"]} ({r["errors"]}) |
| Redis commands per request (hot path, Lua scripts' inner calls included) | {r["redis_commands_per_request"]} |
| PostgreSQL commits per request, hot path (background work) | {r["pg_commits_per_request_hot_path"]} |
| Usage drain throughput (one drainer) | {r["drain_records_per_second"]} records/s ({r["drained_records"]} records) |
| PostgreSQL rows written per usage record (drain) | {r["pg_rows_written_per_record"]} |
| Memory: one web process (uvicorn worker) | {r["web_rss_mb"]} MB RSS |
| Memory: one Celery worker (concurrency 1, pool included) | {r["worker_rss_mb"]} MB RSS |

## What this implies

Linear extrapolation from the figures above (each web process is single-threaded, so one per core;
Redis and PostgreSQL load grows with requests, not with processes):

| Requests/s | Web tier | Redis | PostgreSQL (usage drain) |
| --- | --- | --- | --- |
{plan(1_000)}
{plan(10_000)}
{plan(100_000)}

- **Web tier**: stateless; add `serve` instances behind the load balancer (`GATEWAY_WEB_WORKERS` =
  cores per host). The requests/s above come from this machine under its load at the time;
  size the web tier from your own run of this benchmark on your hardware. Upstream latency does
  not cost CPU (requests wait on sockets), so the figure above is the CPU bound; slow upstreams
  need more concurrent connections, not more processes.
- **Redis**: one instance does on the order of 100k simple commands/s per core (Redis' published
  figure, not measured here). At 1k requests/s
  one small instance is plenty; around 10k requests/s it is the component to watch (one core);
  beyond that, shard: rate-limit, budget and circuit keys are per key / budget / deployment, so
  they spread over a Redis Cluster by key (the Lua scripts touch one key's hash slot each — keep
  a request's keys under one hash tag when moving to Cluster), and the usage stream can be split
  into several streams, one consumer group each. Redis must keep AOF on and `noeviction`.
- **PostgreSQL**: the hot path does not write (configuration comes from the in-process snapshot,
  usage goes through Redis). Writes come from the drain, batched; the drain rate of one worker
  above is the number of records/s one Celery worker absorbs. Reads (reports, admin) can go to
  a read replica; the rollups keep report queries off the raw usage table. At 100k requests/s
  the usage table needs partitioning by time (retention already drops old raw events).
- **Celery**: exactly one `beat`; as many `worker`s as the drain rate requires (see the table).

Not measured here: streaming (one long-lived connection per stream; see docs/benchmarks.md),
TLS termination (at the load balancer), a real network between the processes.

{report.provenance_line()}
"""


def main() -> int:
    results = measure()
    markdown = render(results)
    report.write("scaling", dict(results), markdown)
    DOC.write_text(markdown)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

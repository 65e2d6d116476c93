"""Gateway overhead: the gateway (Daphne, uvicorn) against calling the mock upstream directly.

``python -m bench.gateway [--quick]`` sets everything up itself (fresh embedded
PostgreSQL + Redis under var/bench, migrations, provider/model/tier/key, the
mock upstream, each server in turn), loads each target at 1, 16 and 64
concurrent connections, non-streaming and streaming, and prints Markdown
tables; JSON goes to ``bench/results/gateway[-quick].json``. See
docs/benchmarks.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson

from bench import docs, load, procs, report, stack

CONCURRENCIES = (1, 16, 64)
CPU_TARGET_MS = 1.0
ADDED_P50_TARGET_MS = 1.0
PROMPT = "Say hello to the benchmark."
DOC = procs.BASE_DIR / "docs" / "benchmarks.md"
SECTION = "gateway-overhead"  # its section of docs/benchmarks.md (bench.docs.replace_section)


@dataclass(frozen=True, slots=True)
class Plan:
    duration: float
    warmup: float
    max_requests: int
    concurrencies: tuple[int, ...]
    servers: tuple[str, ...]
    name: str
    quiet: procs.QuietPolicy


def _plan(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    return Plan(
        duration=args.duration or (3.0 if quick else 10.0),
        warmup=1.0 if quick else 2.0,
        max_requests=1_000_000,
        concurrencies=tuple(args.concurrency or CONCURRENCIES),
        servers=tuple(args.servers or stack.SERVERS),
        name=args.name or ("gateway-quick" if quick else "gateway"),
        quiet=_quiet(args.max_other_load, quick, args.patience),
    )


def _body(model: str, stream: bool) -> bytes:
    payload: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        payload |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(payload)


def targets(base_url: str, model: str, secret: str) -> dict[bool, load.Target]:
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    url = f"{base_url}/v1/chat/completions"
    return {stream: load.Target(url, headers, _body(model, stream), stream) for stream in (False, True)}


def _check_once(target: load.Target) -> None:
    """One request before measuring, so a broken setup fails loudly instead of as 100 % errors."""
    request = urllib.request.Request(target.url, data=target.body, headers=dict(target.headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{target.url} answered {exc.code}: {exc.read()[:300]!r} (see var/bench/logs/)") from None


def _quiet(max_other_load: float, quick: bool, patience: float | None) -> procs.QuietPolicy:
    if quick:
        return procs.QuietPolicy(max_other_load, retries=1, quiet_wait=5.0, patience=patience or 30.0)
    return procs.QuietPolicy(max_other_load, retries=3, quiet_wait=30.0, patience=patience or 180.0)


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class Meters:
    """CPU meters for every process that works on a request, plus Redis commands, around one measured phase."""

    def __init__(self, server_pid: int, mock_pid: int, backing: stack.Backing) -> None:
        pids = {"server": [server_pid], "client": [os.getpid()]}
        if mock_pid != server_pid:
            pids["mock"] = [mock_pid]
        if (redis_pid := backing.redis_pid()) is not None:
            pids["redis"] = [redis_pid]
        self._meters = {name: procs.CpuMeter(p) for name, p in pids.items()}
        if (pg_pid := backing.postgres_pid()) is not None:
            self._meters["postgres"] = procs.CpuMeter([pg_pid], children=True)
        self._machine = procs.MachineMeter()
        self.used: dict[str, procs.CpuUse] = {}
        self.machine = (0.0, 0.0, 0.0)
        self._redis_calls: dict[str, int] = {}
        self.redis_calls: dict[str, int] = {}

    def begin(self) -> None:
        self._redis_calls = stack.redis_command_counts()
        self._machine.begin()
        for meter in self._meters.values():
            meter.begin()

    def end(self) -> None:
        self.used = {name: meter.end() for name, meter in self._meters.items()}
        self.machine = self._machine.end()
        after = stack.redis_command_counts()
        self.redis_calls = {
            k: v - self._redis_calls.get(k, 0) for k, v in after.items() if v > self._redis_calls.get(k, 0)
        }

    def other_cores(self) -> tuple[float, float]:
        """Cores used by processes outside this benchmark, and cores stolen, while measuring."""
        wall, busy, steal = self.machine
        ours = sum(used.total for used in self.used.values())
        return (max(0.0, busy - ours) / wall, steal / wall) if wall else (0.0, 0.0)


def _run_cell(label: str, target: load.Target, concurrency: int, plan: Plan, meters: Meters) -> dict[str, object]:
    stack.trim_usage()
    coro = load.run(
        target,
        concurrency=concurrency,
        duration=plan.duration,
        warmup=plan.warmup,
        max_requests=plan.max_requests,
        on_start=meters.begin,
        on_stop=meters.end,
    )
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        samples = runner.run(coro)
    summary = load.summarise(samples)
    done = max(1, int(summary["requests"]))  # type: ignore[call-overload]
    cell: dict[str, object] = {"target": label, "stream": target.stream, "concurrency": concurrency, **summary}
    for name, used in meters.used.items():
        cell[f"{name}_cpu_ms_per_req"] = used.total * 1000 / done
    server = meters.used["server"]
    cell["server_user_ms_per_req"] = server.user * 1000 / done
    cell["server_sys_ms_per_req"] = server.system * 1000 / done
    cell["server_cpu_cores"] = server.total / samples.elapsed if samples.elapsed else 0.0
    cell["redis_commands_per_req"] = sum(meters.redis_calls.values()) / done
    cell["redis_commands_by_name_per_req"] = {k: round(v / done, 3) for k, v in sorted(meters.redis_calls.items())}
    cell["other_cpu_cores"], cell["steal_cores"] = meters.other_cores()
    _progress(
        f"  {label:8} {'stream' if target.stream else 'plain':6} c={concurrency:<3} "
        f"{summary['rps']:9.1f} rps  p50 {summary['p50_ms']:7.2f} ms  errors {summary['errors']}  "
        f"server CPU {cell['server_cpu_ms_per_req']:.3f} ms/req  other load {cell['other_cpu_cores']:.2f} cores"
    )
    return cell


def _metered_cell(
    label: str,
    target: load.Target,
    concurrency: int,
    plan: Plan,
    server_pid: int,
    mock_pid: int,
    backing: stack.Backing,
) -> dict[str, object]:
    return _run_cell(label, target, concurrency, plan, Meters(server_pid, mock_pid, backing))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run_target(
    label: str, targets: dict[bool, load.Target], server_pid: int, mock_pid: int, backing: stack.Backing, plan: Plan
) -> list[dict[str, object]]:
    cells = []
    for stream in (False, True):
        _check_once(targets[stream])
        for concurrency in plan.concurrencies:
            cell = functools.partial(
                _metered_cell, label, targets[stream], concurrency, plan, server_pid, mock_pid, backing
            )
            cells.append(plan.quiet.run(cell, _progress))
    return cells


def measure(plan: Plan) -> list[dict[str, object]]:
    """Set up the stack, run every cell, tear everything down."""
    with stack.backing_services() as backing, stack.mock_upstream(backing.env, backing.logs) as (mock_pid, mock):
        secret = stack.create_fixtures(mock)
        _progress(f"mock upstream {mock}; var dir {backing.var_dir}")
        cells = _run_target("direct", targets(mock, stack.UPSTREAM_MODEL, "bench"), mock_pid, mock_pid, backing, plan)
        for server in plan.servers:
            with stack.gateway(server, backing.env, backing.logs) as (pid, url):
                _progress(f"{server} on {url} (pid {pid})")
                cells += _run_target(server, targets(url, stack.TIER, secret), pid, mock_pid, backing, plan)
    return cells


# ----------------------------------------------------------------------------- analysis


def _find(cells: list[dict[str, object]], target: str, stream: bool, concurrency: int) -> dict[str, object] | None:
    for cell in cells:
        if cell["target"] == target and cell["stream"] == stream and cell["concurrency"] == concurrency:
            return cell
    return None


def add_deltas(cells: list[dict[str, object]]) -> None:
    """Added latency: gateway p50 minus direct p50 at the same concurrency and mode."""
    for cell in cells:
        if cell["target"] == "direct":
            continue
        direct = _find(cells, "direct", bool(cell["stream"]), int(cell["concurrency"]))  # type: ignore[call-overload]
        if direct is None:
            continue
        cell["added_p50_ms"] = float(cell["p50_ms"]) - float(direct["p50_ms"])  # type: ignore[arg-type]
        if cell["stream"]:
            cell["added_ttfb_p50_ms"] = float(cell["ttfb_p50_ms"]) - float(direct["ttfb_p50_ms"])  # type: ignore[arg-type]


def _fastest(cells: list[dict[str, object]], servers: tuple[str, ...], concurrency: int) -> str:
    def rps(server: str) -> float:
        cell = _find(cells, server, False, concurrency)
        return float(cell["rps"]) if cell else 0.0  # type: ignore[arg-type]

    return max(servers, key=rps)


def verdict(cells: list[dict[str, object]], plan: Plan) -> dict[str, object]:
    """The issue's targets, checked against the fastest server (highest RPS at the top concurrency)."""
    fastest = _fastest(cells, plan.servers, max(plan.concurrencies))
    mine = [c for c in cells if c["target"] == fastest]
    worst_cpu = max(float(c["server_cpu_ms_per_req"]) for c in mine)  # type: ignore[arg-type]
    c1 = _find(cells, fastest, False, min(plan.concurrencies)) or {}
    added = float(c1.get("added_p50_ms", float("nan")))  # type: ignore[arg-type]
    errors = sum(int(c["errors"]) for c in cells if c["target"] != "direct")  # type: ignore[call-overload]
    return {
        "fastest_server": fastest,
        "cpu_ms_per_req_c1": c1.get("server_cpu_ms_per_req"),
        "cpu_ms_per_req_worst": worst_cpu,
        "cpu_ok": worst_cpu <= CPU_TARGET_MS,
        "added_p50_ms_c1": added,
        "added_ok": added <= ADDED_P50_TARGET_MS,
        "gateway_errors": errors,
        "errors_ok": errors == 0,
    }


# ----------------------------------------------------------------------------- rendering


def _plain_table(cells: list[dict[str, object]]) -> str:
    rows = [
        [c["target"], c["concurrency"], c["requests"], c["rps"], c["p50_ms"], c["p99_ms"],
         c.get("added_p50_ms", "–"), c["errors"], _ms3(c["server_cpu_ms_per_req"]), c["server_cpu_cores"]]
        for c in cells if not c["stream"]
    ]  # fmt: skip
    headers = ["Target", "Conc.", "Requests", "RPS", "p50 ms", "p99 ms", "Added p50 ms", "Errors",
               "Server CPU ms/req", "Server cores busy"]  # fmt: skip
    return report.table(headers, rows)


def _stream_table(cells: list[dict[str, object]]) -> str:
    rows = [
        [c["target"], c["concurrency"], c["requests"], c["rps"], c["ttfb_p50_ms"], c["ttfb_p99_ms"],
         c["p50_ms"], c["p99_ms"], c.get("added_ttfb_p50_ms", "–"), c.get("added_p50_ms", "–"), c["errors"],
         _ms3(c["server_cpu_ms_per_req"])]
        for c in cells if c["stream"]
    ]  # fmt: skip
    headers = ["Target", "Conc.", "Requests", "RPS", "TTFB p50 ms", "TTFB p99 ms", "Total p50 ms", "Total p99 ms",
               "Added TTFB p50 ms", "Added total p50 ms", "Errors", "Server CPU ms/req"]  # fmt: skip
    return report.table(headers, rows)


def _cpu_table(cells: list[dict[str, object]]) -> str:
    names = ("server_user", "server_sys", "server_cpu", "mock_cpu", "redis_cpu", "postgres_cpu", "client_cpu")
    rows = [
        [c["target"], "stream" if c["stream"] else "plain", c["concurrency"],
         *(_ms3(c.get(f"{n}_ms_per_req", "–")) for n in names), f"{c['redis_commands_per_req']:.2f}",
         c["other_cpu_cores"]]
        for c in cells
    ]  # fmt: skip
    headers = ["Target", "Mode", "Conc.", "Server user", "Server sys", "Server total", "Mock upstream", "Redis",
               "PostgreSQL", "Load client", "Redis commands/req", "Other load (cores)"]  # fmt: skip
    return report.table(headers, rows)


def _ms3(value: object) -> object:
    return f"{value:.3f}" if isinstance(value, float) else value


def _verdict_table(result: dict[str, object]) -> str:
    def mark(ok: object) -> str:
        return "yes" if ok else "**no**"

    server = result["fastest_server"]
    rows = [
        [f"CPU per request ≤ {CPU_TARGET_MS} ms ({server}, worst cell)", _ms3(result["cpu_ms_per_req_worst"]),
         mark(result["cpu_ok"])],
        [f"Added p50 ≤ {ADDED_P50_TARGET_MS} ms at concurrency 1 ({server})", _ms3(result["added_p50_ms_c1"]),
         mark(result["added_ok"])],
        ["No error up to concurrency 64 (both servers)", result["gateway_errors"], mark(result["errors_ok"])],
    ]  # fmt: skip
    return report.table(["Target", "Measured", "Met"], rows)


def render(cells: list[dict[str, object]], result: dict[str, object], plan: Plan, machine: dict[str, object]) -> str:
    return "\n\n".join(
        [
            f"### Gateway overhead ({plan.name}: {plan.duration:g} s per cell after {plan.warmup:g} s warm-up; "
            f"{machine['nproc']} CPUs, Python {machine['python']}, commit {machine['commit']}"
            f"{' with local changes' if machine['dirty'] else ''})",
            "Non-streaming `POST /v1/chat/completions`:",
            _plain_table(cells),
            "Streaming (`stream: true`, `include_usage`): TTFB = time to the first body byte.",
            _stream_table(cells),
            "CPU ms per request by process (for `direct` the server is the mock upstream); Redis commands per request:",
            _cpu_table(cells),
            "Targets:",
            _verdict_table(result),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per cell (~2 minutes in all)")
    parser.add_argument("--duration", type=float, help="seconds per measured cell")
    parser.add_argument("--concurrency", type=int, action="append", help="repeatable; default 1, 16, 64")
    parser.add_argument("--servers", nargs="+", choices=stack.SERVERS, help="default: both")
    parser.add_argument("--name", help="results file name (default gateway / gateway-quick)")
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=0.25,
        help="re-run a cell when other processes used more CPU cores than this meanwhile (shared machines)",
    )
    parser.add_argument(
        "--patience",
        type=float,
        help="seconds all waiting for a quiet machine and re-running may add (default 180; 30 with --quick)",
    )
    parser.add_argument("--docs", action="store_true", help=f"rewrite the {SECTION} section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    plan = _plan(args)
    machine = procs.machine_info()
    cells = measure(plan)
    add_deltas(cells)
    result = verdict(cells, plan)
    markdown = render(cells, result, plan, machine)
    print(markdown)
    data = {"machine": machine, "plan": asdict(plan), "verdict": result, "cells": cells}
    path = report.write(plan.name, report.clean(data), markdown)  # type: ignore[arg-type]
    print(f"\nJSON: {path.relative_to(procs.BASE_DIR)}")
    if args.docs:
        command = "python -m bench.gateway " + " ".join(argv if argv is not None else sys.argv[1:])
        lines = [
            f"Generated by `{command.strip()}`; raw results: `{path.relative_to(procs.BASE_DIR)}`.",
            "",
            *markdown.splitlines(),
            "",
            report.provenance_line(),
        ]
        docs.replace_section(DOC, SECTION, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench.peers`` (``make bench-peers``): this gateway against Portkey and LiteLLM, one table.

Installs the pinned peers into var/peers/ when missing, starts a fresh embedded
PostgreSQL + Redis (var/peers/stack) and the bundled mock upstream, then runs
each server in turn on its own CPU and loads it from the other one: JSON
answers and 20-chunk streams, at concurrency 1 and 64. Prints the table,
writes the JSON to docs/results/peers.json (``peers-partial.json`` for
``--only``) and, after a run of every row, the sections of docs/benchmarks.md
and README.md. ``--only ROW ...`` measures a subset
(the mock baseline always runs) and leaves the docs alone.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from bench import docs, procs, stack
from bench import report as results
from bench.peers import cpu, fixtures, install, loadgen, page, report, run, servers

ROWS = (
    "mock",
    "portkey",
    "litellm",
    "bare-relay",
    "gateway-daphne",
    "gateway-uvicorn",
    "gateway-uvicorn-auto",
    "gateway-uvicorn-semantic",
)
# Measured only when named in --only: the pipeline with the response cache bypassed (X-Gateway-Cache: no-store).
OPTIONAL_ROWS = ("gateway-uvicorn-no-store",)
VAR_DIR = procs.BASE_DIR / "var" / "peers" / "stack"
DOCS = procs.BASE_DIR / "docs" / "benchmarks.md"
README = procs.BASE_DIR / "README.md"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ROWS[1:] + OPTIONAL_ROWS,
        metavar="ROW",
        help=f"rows to run: {', '.join(ROWS[1:] + OPTIONAL_ROWS)} (the last only when named)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="times every cell is measured, interleaved (default 2)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell and round (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each cell (default 1)")
    parser.add_argument("--first-warmup", type=float, default=6.0, help="warm-up seconds per server at start (6)")
    parser.add_argument("--concurrency", type=int, default=64, help="the high concurrency (default 64)")
    parser.add_argument("--loadgen", choices=("wrk", "python"), default="wrk", help="wrk when installed (default)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the load to CPUs")
    parser.add_argument("--server-cpu", type=int, help="CPU of the server (default: the last one)")
    parser.add_argument("--load-cpu", type=int, help="CPU of the load generator, mock, Redis, PostgreSQL (default: 0)")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only re-render a saved run into the docs")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", action="store_true", help="write the docs sections even after a partial run")
    docs.add_argument("--no-docs", action="store_true", help="never write docs/benchmarks.md and README.md")
    return parser


def _install(selected: list[str]) -> dict[str, str]:
    """Install the selected peers; the reason for each one that cannot be installed here."""
    skipped: dict[str, str] = {}
    for name, installer in (("portkey", install.portkey), ("litellm", install.litellm)):
        if name in selected:
            try:
                installer()
            except install.InstallError as exc:
                run.say(f"{name} cannot be installed: {exc}")
                skipped[name] = f"could not be installed: {exc}"
    return skipped


@contextlib.contextmanager
def _guard(row: str, skipped: dict[str, str]) -> Iterator[None]:
    """A row that fails (start-up, a broken answer) is reported as not measured; the run goes on."""
    try:
        yield
    except (RuntimeError, OSError, ValueError) as exc:
        run.say(f"{row} failed: {exc}")
        skipped[row] = f"failed: {str(exc)[:300]}"


def _start_servers(
    selected: list[str], exits: contextlib.ExitStack, pinning: cpu.Pinning, skipped: dict[str, str]
) -> list[run.Target]:
    """The stack, the mock and every selected server, all left running for the rounds."""
    backing = exits.enter_context(stack.backing_services(VAR_DIR))
    mock_pid, mock = exits.enter_context(stack.mock_upstream(backing.env, backing.logs))
    keys = fixtures.create(mock)
    pg_pid = backing.postgres_pid()
    postgres = procs.CpuMeter([pg_pid], children=True) if pg_pid else None

    def meters(pgid: int | None = None, pids: tuple[int, ...] = ()) -> run.Meters:
        return run.Meters(pgid, list(pids), mock_pid, backing.redis_pid(), postgres)

    run.say(f"mock upstream {mock}; var dir {backing.var_dir}; {_pinning_text(pinning)}")
    targets = [run.Target("mock", servers.mock_route(mock), meters(pids=(mock_pid,)))]
    if "portkey" in selected and "portkey" not in skipped:
        with _guard("portkey", skipped):
            server = exits.enter_context(servers.portkey(backing.env, backing.logs, pinning))
            targets.append(run.Target("portkey", servers.portkey_route(server, mock), meters(server.pgid)))
    if "litellm" in selected and "litellm" not in skipped:
        with _guard("litellm", skipped):
            server = exits.enter_context(servers.litellm(backing.env, backing.logs, pinning, mock))
            targets.append(run.Target("litellm", servers.litellm_route(server), meters(server.pgid)))
    if "bare-relay" in selected:
        with _guard("bare-relay", skipped):
            server = exits.enter_context(servers.bare_relay(backing.env, backing.logs, pinning, mock))
            targets.append(run.Target("bare-relay", servers.bare_relay_route(server), meters(server.pgid)))
    if "gateway-uvicorn-semantic" in selected and not fixtures.semantic_available():
        skipped["gateway-uvicorn-semantic"] = "the local embedder is not installed (requirements/embeddings.txt)"
    routes = {
        "gateway-daphne": (keys.pipeline, fixtures.TIER),
        "gateway-uvicorn": (keys.pipeline, fixtures.TIER),
        "gateway-uvicorn-auto": (keys.auto, "auto"),
        "gateway-uvicorn-semantic": (keys.semantic, fixtures.TIER),
        "gateway-uvicorn-no-store": (keys.pipeline, fixtures.TIER),
    }
    for name in ("daphne", "uvicorn"):
        rows = [r for r in selected if r.startswith(f"gateway-{name}") and r not in skipped]
        if not rows:
            continue
        with _guard(f"gateway-{name}", skipped):
            server = exits.enter_context(servers.gateway(name, backing.env, backing.logs, pinning))
            for row in rows:
                route = servers.gateway_route(server, *routes[row], no_store=row.endswith("-no-store"))
                targets.append(run.Target(row, route, meters(server.pgid), before=stack.trim_usage))
    return targets


def measure(
    selected: list[str], plan: run.Plan, pinning: cpu.Pinning, skipped: dict[str, str]
) -> tuple[list[dict[str, object]], dict[str, float] | None]:
    """Start everything, warm each server, then measure every row once per round (in a rotating order).

    Returns the cells and, when a gateway row ran, what draining its stored answers cost afterwards.

    All servers stay up for the whole run, idle but for the one being measured,
    so that rounds interleave them: a burst of other work on a shared machine
    then falls on every server alike, not on whichever row ran at that moment.
    """
    cells: list[dict[str, object]] = []
    pinning.pin_self_to_load_cpu()
    with contextlib.ExitStack() as exits:
        targets = _start_servers(selected, exits, pinning, skipped)
        for target in list(targets):
            with _guard(target.label, skipped):
                run.say(f"warming up {target.label}")
                run.warm(target, plan)
            if target.label in skipped:
                targets.remove(target)
        for number in range(plan.rounds):
            run.say(f"round {number + 1} of {plan.rounds}")
            shift = number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                cells += run.measure_round(target, plan, number)
        drain = run.cache_drain_cost() if any(t.label.startswith("gateway") for t in targets) else None
    return cells, drain


def _pinning_text(pinning: cpu.Pinning) -> str:
    if not pinning.enabled:
        return "not pinned to CPUs"
    return (
        f"server pinned to CPU {pinning.server_cpu}; load generator, mock upstream, Redis and PostgreSQL "
        f"on CPU {pinning.load_cpu}"
    )


def _machine_text(machine: dict[str, object]) -> str:
    return f"{machine['nproc']} CPUs ({machine['cpu_model']}), Python {machine['python']}"


def _write_docs(
    markdown: str, versus: list[dict[str, object]], summary: list[dict[str, float | str]], meta: dict[str, object]
) -> None:
    docs.replace_section(DOCS, report.SECTION, markdown.splitlines())
    docs.replace_section(README, report.SECTION, report.readme_lines(versus, meta, summary))
    print(f"Updated {DOCS.relative_to(procs.BASE_DIR)} and {README.relative_to(procs.BASE_DIR)}")


def render_saved(path: Path, write_docs: bool) -> int:
    """Re-render the table and the docs sections from a saved run's JSON (no measuring)."""
    data = orjson.loads(path.read_bytes())
    meta, cells = data["meta"], data["cells"]
    meta.setdefault("provenance", data.get("provenance"))
    high = int(meta["concurrency"])
    summary = report.rows(report.aggregate(cells), list(meta["rows"]), high)
    versus = report.versus_portkey(summary, cells, high)
    markdown = page.render(meta, summary, versus, data.get("skipped") or {}, report.shortfalls(cells))
    print(markdown)
    if write_docs:
        _write_docs(markdown, versus, summary, meta)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.render:
        return render_saved(args.render, not args.no_docs)
    selected = ["mock", *(r for r in ROWS[1:] + OPTIONAL_ROWS if r in (args.only or ROWS))]
    full = set(ROWS) <= set(selected)
    pinning = cpu.choose_pinning(args.server_cpu, args.load_cpu, not args.no_pin)
    tool = loadgen.available_tool(args.loadgen)
    if tool != args.loadgen:
        run.say("wrk is not installed (Debian: apt-get install wrk); using the aiohttp load client")
    plan = run.Plan(
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        tool=tool,
        rounds=max(1, args.rounds),
        first_warmup=args.first_warmup,
    )
    machine = procs.machine_info()
    started = time.monotonic()
    skipped = _install(selected)
    cells, drain = measure(selected, plan, pinning, skipped)
    now = dt.datetime.now(dt.UTC)
    # One file per kind of run: the docs name it, a later run replaces it (with its own provenance).
    name = "peers" if full else "peers-partial"
    summary = report.rows(report.aggregate(cells), selected, plan.concurrency)
    versus = report.versus_portkey(summary, cells, plan.concurrency)
    meta: dict[str, object] = {
        "date": f"{now:%Y-%m-%d %H:%M} UTC",
        "commit": machine["commit"],
        "dirty": machine["dirty"],
        "machine": _machine_text(machine),
        "pinning": _pinning_text(pinning),
        "loadgen": "wrk (bench/peers/wrk.lua), one thread"
        if tool == "wrk"
        else "the aiohttp client in bench/peers/loadgen.py",
        "duration": plan.duration,
        "rounds": plan.rounds,
        "warmup": plan.warmup,
        "concurrency": plan.concurrency,
        "elapsed_s": time.monotonic() - started,
        "versions": install.versions(),
        "results": f"docs/results/{name}.json",
        "rows": selected,
        "cache_drain": drain,
        "provenance": results.provenance(),
    }
    markdown = page.render(meta, summary, versus, skipped, report.shortfalls(cells))
    print(markdown)
    data = {
        "meta": meta,
        "machine": machine,
        "skipped": skipped,
        "summary": summary,
        "versus_portkey": versus,
        "cells": cells,
    }
    path = results.write(name, results.clean(data), markdown)  # type: ignore[arg-type]
    print(f"\nJSON: {path.relative_to(procs.BASE_DIR)}")
    if (full or args.docs) and not args.no_docs:
        _write_docs(markdown, versus, summary, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Async HTTP clients for the upstream hop: aiohttp against httpx2 (and httpx when installed).

``python -m bench.upstream_clients [--quick]`` starts the bundled mock upstream
and drives its ``POST /v1/chat/completions`` from this process at 50
concurrent requests with each client (one pooled client, 50 workers), on the
default asyncio loop (what Daphne runs) and on uvloop (what uvicorn runs),
non-streaming and streaming. Reports RPS, p50/p99 and the client's own CPU
per request; JSON goes to ``bench/results/upstream_clients[-quick].json``.
This is the measurement behind ``providers/http.py`` using aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import orjson

from bench import docs, load, procs, report, stack

CONCURRENCY = 50
TIMEOUT_S = 30.0
UNREACHABLE_URL = "postgresql://unused@127.0.0.1:9/unused"  # the mock never touches the database

OneRequest = Callable[[], Awaitable[tuple[int, bytes, float | None]]]


@dataclass(frozen=True, slots=True)
class Plan:
    duration: float
    warmup: float
    concurrency: int
    loops: tuple[str, ...]
    name: str
    quiet: procs.QuietPolicy


# ----------------------------------------------------------------------------- clients


class AiohttpClient:
    name = "aiohttp"

    def __init__(self, concurrency: int) -> None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), skip_auto_headers=("User-Agent",)
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float | None]:
        async with self._session.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.read(), None

    async def stream(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float | None]:
        started = time.perf_counter()
        ttfb: float | None = None
        last = b""
        async with self._session.post(url, data=body, headers=headers) as resp:
            async for line in resp.content:  # line by line, as providers/http.py reads SSE
                if ttfb is None:
                    ttfb = time.perf_counter() - started
                if line.strip():
                    last = line
        return resp.status, last, ttfb

    async def close(self) -> None:
        await self._session.close()


class HttpxFamilyClient:
    """httpx and its fork httpx2 share one API."""

    def __init__(self, module: ModuleType, concurrency: int) -> None:
        self.name = module.__name__
        limits = module.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client: Any = module.AsyncClient(limits=limits, timeout=TIMEOUT_S)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float | None]:
        resp = await self._client.post(url, content=body, headers=headers)
        return resp.status_code, resp.content, None

    async def stream(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float | None]:
        started = time.perf_counter()
        ttfb: float | None = None
        last = ""
        async with self._client.stream("POST", url, content=body, headers=headers) as resp:
            async for line in resp.aiter_lines():
                if ttfb is None:
                    ttfb = time.perf_counter() - started
                if line.strip():
                    last = line
        return resp.status_code, last.encode(), ttfb

    async def close(self) -> None:
        await self._client.aclose()


Client = AiohttpClient | HttpxFamilyClient


def available_clients() -> list[str]:
    """aiohttp and httpx2 always; httpx only when it is installed."""
    names = ["aiohttp", "httpx2"]
    with contextlib.suppress(ImportError):
        importlib.import_module("httpx")
        names.append("httpx")
    return names


def make_client(name: str, concurrency: int) -> Client:
    if name == "aiohttp":
        return AiohttpClient(concurrency)
    return HttpxFamilyClient(importlib.import_module(name), concurrency)


# ----------------------------------------------------------------------------- load


def _body(stream: bool) -> bytes:
    payload: dict[str, object] = {
        "model": stack.UPSTREAM_MODEL,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
    }
    if stream:
        payload |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(payload)


def _valid(status: int, body: bytes, stream: bool) -> bool:
    return status == 200 and ((b"[DONE]" in body) if stream else (b'"choices"' in body))


async def _worker(client: Client, url: str, stream: bool, deadline: float, samples: load.Samples) -> None:
    body, headers = _body(stream), {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    call = client.stream if stream else client.post
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            status, answer, ttfb = await call(url, body, headers)
        except Exception as exc:  # any client's error type counts as an error, the run goes on
            samples.error(f"{exc.__class__.__name__}: {exc}"[:200])
            continue
        if not _valid(status, answer, stream):
            samples.error(f"HTTP {status}: {answer[:120]!r}")
            continue
        samples.latencies.append(time.perf_counter() - started)
        if ttfb is not None:
            samples.ttfbs.append(ttfb)


async def _phase(client: Client, url: str, stream: bool, concurrency: int, duration: float) -> load.Samples:
    samples = load.Samples()
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(_worker(client, url, stream, deadline, samples) for _ in range(concurrency)))
    samples.elapsed = time.perf_counter() - started
    return samples


class Meters:
    """This process (the client), the mock upstream and the whole machine, around the measured phase."""

    def __init__(self, mock_pid: int) -> None:
        self._client = procs.CpuMeter([os.getpid()])
        self._mock = procs.CpuMeter([mock_pid])
        self._machine = procs.MachineMeter()
        self.client = self.mock = self.other_cores = 0.0

    def begin(self) -> None:
        self._machine.begin()
        self._client.begin()
        self._mock.begin()

    def end(self) -> None:
        self.client, self.mock = self._client.end().total, self._mock.end().total
        wall, busy, _ = self._machine.end()
        self.other_cores = max(0.0, busy - self.client - self.mock) / wall if wall else 0.0


async def _measure(name: str, url: str, stream: bool, plan: Plan, meters: Meters) -> load.Samples:
    """Warm up, then measure with ``meters`` running."""
    client = make_client(name, plan.concurrency)
    try:
        await _phase(client, url, stream, plan.concurrency, plan.warmup)
        meters.begin()
        samples = await _phase(client, url, stream, plan.concurrency, plan.duration)
        meters.end()
        return samples
    finally:
        await client.close()


def _loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run_cell(name: str, loop: str, stream: bool, url: str, plan: Plan, mock_pid: int) -> dict[str, object]:
    meters = Meters(mock_pid)
    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        samples = runner.run(_measure(name, url, stream, plan, meters))
    summary = load.summarise(samples)
    done = max(1, len(samples.latencies))
    cell: dict[str, object] = {"client": name, "loop": loop, "stream": stream, **summary}
    cell["client_cpu_ms_per_req"] = meters.client * 1000 / done
    cell["mock_cpu_ms_per_req"] = meters.mock * 1000 / done
    cell["other_cpu_cores"] = meters.other_cores
    _progress(
        f"  {name:7} {loop:7} {'stream' if stream else 'plain':6} {summary['rps']:9.1f} rps  "
        f"p99 {summary['p99_ms']:8.2f} ms  errors {summary['errors']}  "
        f"client CPU {cell['client_cpu_ms_per_req']:.3f} ms/req"
    )
    return cell


def _quiet(max_other_load: float, quick: bool, patience: float | None) -> procs.QuietPolicy:
    if quick:
        return procs.QuietPolicy(max_other_load, retries=1, quiet_wait=5.0, patience=patience or 30.0)
    return procs.QuietPolicy(max_other_load, retries=3, quiet_wait=30.0, patience=patience or 180.0)


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def _mock() -> Iterator[tuple[int, str]]:
    """The mock upstream alone; Django settings need URLs, which the mock never connects to."""
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as var_dir:
        env = dict(os.environ)
        env.update(
            GATEWAY_VAR_DIR=var_dir,
            DATABASE_URL=os.environ.get("DATABASE_URL", UNREACHABLE_URL),
            REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:9/0"),
            LOG_LEVEL="WARNING",
            LOG_FORMAT="console",
        )
        with stack.mock_upstream(env, Path(var_dir)) as (pid, url):
            yield pid, url


def measure(plan: Plan, clients: list[str]) -> list[dict[str, object]]:
    cells = []
    with _mock() as (mock_pid, mock_url):
        url = f"{mock_url}/v1/chat/completions"
        _progress(f"mock upstream {mock_url}; clients {', '.join(clients)}; concurrency {plan.concurrency}")
        for stream in (False, True):
            for loop in plan.loops:
                for name in clients:
                    cell = functools.partial(run_cell, name, loop, stream, url, plan, mock_pid)
                    cells.append(plan.quiet.run(cell, _progress))
    return cells


# ----------------------------------------------------------------------------- rendering


SECTION = "upstream-clients"  # its section of docs/benchmarks.md (bench.docs.replace_section)


def render(cells: list[dict[str, object]], plan: Plan, machine: dict[str, object], skipped: list[str]) -> str:
    rows = [
        [c["client"], c["loop"], "stream" if c["stream"] else "plain", c["requests"], c["rps"], c["p50_ms"],
         c["p99_ms"], c.get("ttfb_p99_ms", "–"), c["errors"], f"{c['client_cpu_ms_per_req']:.3f}",
         f"{c['mock_cpu_ms_per_req']:.3f}", c["other_cpu_cores"]]
        for c in cells
    ]  # fmt: skip
    headers = ["Client", "Loop", "Mode", "Requests", "RPS", "p50 ms", "p99 ms", "TTFB p99 ms", "Errors",
               "Client CPU ms/req", "Mock CPU ms/req", "Other load (cores)"]  # fmt: skip
    parts = [
        f"### Upstream clients ({plan.name}: {plan.concurrency} concurrent requests, {plan.duration:g} s per cell "
        f"after {plan.warmup:g} s warm-up; {machine['nproc']} CPUs, Python {machine['python']}, "
        f"commit {machine['commit']}{' with local changes' if machine['dirty'] else ''})",
        report.table(headers, rows),
    ]
    if skipped:
        parts.append(f"Not installed, skipped: {', '.join(skipped)}.")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per cell")
    parser.add_argument("--duration", type=float, help="seconds per measured cell")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--loops", nargs="+", choices=("asyncio", "uvloop"), default=["asyncio", "uvloop"])
    parser.add_argument("--name", help="results file name (default upstream_clients / upstream_clients-quick)")
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
    plan = Plan(
        duration=args.duration or (3.0 if args.quick else 10.0),
        warmup=1.0 if args.quick else 2.0,
        concurrency=args.concurrency,
        loops=tuple(args.loops),
        name=args.name or ("upstream_clients-quick" if args.quick else "upstream_clients"),
        quiet=_quiet(args.max_other_load, args.quick, args.patience),
    )
    clients = available_clients()
    skipped = [name for name in ("httpx",) if name not in clients]
    machine = procs.machine_info()
    cells = measure(plan, clients)
    markdown = render(cells, plan, machine, skipped)
    print(markdown)
    data = {"machine": machine, "plan": asdict(plan), "clients": clients, "skipped": skipped, "cells": cells}
    path = report.write(plan.name, report.clean(data), markdown)  # type: ignore[arg-type]
    print(f"\nJSON: {path.relative_to(procs.BASE_DIR)}")
    if args.docs:
        command = "python -m bench.upstream_clients " + " ".join(argv if argv is not None else sys.argv[1:])
        lines = [
            f"Generated by `{command.strip()}`; raw results: `{path.relative_to(procs.BASE_DIR)}`.",
            "",
            *markdown.splitlines(),
            "",
            report.provenance_line(),
        ]
        docs.replace_section(procs.BASE_DIR / "docs" / "benchmarks.md", SECTION, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

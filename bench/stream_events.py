"""Gateway CPU per relayed stream event: ``python -m bench.stream_events [--server uvicorn] [--requests N]``.

Sets up its own stack (``bench.stack``: embedded PostgreSQL and Redis, the mock
upstream) with the peer benchmark's full pipeline (a key with a budget and
RPM/TPM limits, the usage record, and the exact cache on — every prompt is
unique, so it misses and stores the streamed answer — or off), then streams
answers of ``SHORT`` and ``LONG`` events through one gateway process, one
request at a time, and reads the process's CPU time. The CPU per relayed event
is the difference between the two per-stream costs divided by the difference in
events, so the per-request work (auth, admission, cache lookup, usage) cancels
out; with the cache on, storing the longer answer is part of it.

Two upstream pacings, because the relay's cost depends on how events arrive:

- ``burst``: the mock sends as fast as it can, so several events arrive in one
  network read (relayed in one write).
- ``paced``: the mock sends ``PACED_TOKENS_PER_SECOND`` events a second, about
  one per network read, as a real provider does.

The target (issue 10) is at most ``TARGET_US`` µs of gateway CPU per relayed
event. Results: ``docs/results/stream-events.json`` and the ``stream-events``
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from dataclasses import asdict, dataclass

import aiohttp
import orjson

from bench import procs, report, stack
from bench.docs import replace_section

SHORT, LONG = 20, 1020
TIER = "events-tier"
CELLS = (("burst", True), ("paced", True), ("burst", False), ("paced", False))
PACED_TOKENS_PER_SECOND = 2000.0
TARGET_US = 5.0
ROUNDS = 3
PAGE = procs.BASE_DIR / "docs" / "benchmarks.md"
README = procs.BASE_DIR / "README.md"


@dataclass(frozen=True, slots=True)
class Cell:
    pacing: str
    cache: bool
    short_ms: float  # CPU per stream of SHORT events
    long_ms: float
    per_event_us: float
    rounds_us: tuple[float, ...]
    machine_busy_cores: float


def _fixtures(mock_url: str) -> dict[bool, str]:
    """A tier on the mock and two pipeline keys, exact cache on and off; their secrets by cache state."""
    from bench.peers.fixtures import tenant_key
    from tests.factories import make_model, make_provider, make_tier

    provider = make_provider(f"{mock_url}/v1", kind="openai", name="events-mock")
    make_tier(TIER, [make_model(provider, name="events-model", upstream_model="mock-gpt")])
    return {
        True: tenant_key("events-pipeline", semantic=False),
        False: tenant_key("events-no-cache", semantic=False, cache=False),
    }


def _body(pacing: str, events: int) -> bytes:
    # The mock answers ``reply`` plus ``words`` filler words, one event per word; ``tps`` paces them.
    tps = f" tps={PACED_TOKENS_PER_SECOND:g}" if pacing == "paced" else ""
    prompt = f"r{uuid.uuid4().hex[:8]} [[mock: reply=ok words={events - 1}{tps}]]"
    return orjson.dumps(
        {
            "model": TIER,
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )


async def _stream(session: aiohttp.ClientSession, url: str, body: bytes) -> int:
    """One streamed request, read to the end; the number of data events received."""
    async with session.post(url, data=body) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {(await resp.read())[:300]!r}")
        raw = await resp.read()
    return raw.count(b"\ndata: ") + raw.startswith(b"data: ")


async def _cpu_per_stream(url: str, secret: str, pacing: str, events: int, requests: int, pid: int) -> float:
    """Gateway CPU ms per stream of ``events`` events (one request at a time)."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        received = await _stream(session, url, _body(pacing, events))  # warm, and check the count
        if received < events:
            raise RuntimeError(f"asked for {events} events, received {received}")
        meter = procs.CpuMeter([pid])
        meter.begin()
        for _ in range(requests):
            await _stream(session, url, _body(pacing, events))
        return meter.end().total * 1000 / requests


def _measure(url: str, secret: str, pacing: str, cache: bool, requests: int, pid: int) -> Cell:
    machine = procs.MachineMeter()
    machine.begin()
    rounds: list[float] = []
    shorts: list[float] = []
    longs: list[float] = []
    for _ in range(ROUNDS):
        short = asyncio.run(_cpu_per_stream(url, secret, pacing, SHORT, requests, pid))
        long = asyncio.run(_cpu_per_stream(url, secret, pacing, LONG, requests, pid))
        shorts.append(short)
        longs.append(long)
        rounds.append((long - short) * 1000 / (LONG - SHORT))
    wall, busy, _ = machine.end()
    return Cell(
        pacing=pacing,
        cache=cache,
        short_ms=statistics.median(shorts),
        long_ms=statistics.median(longs),
        per_event_us=statistics.median(rounds),
        rounds_us=tuple(round(r, 2) for r in rounds),
        machine_busy_cores=round(busy / wall, 2),  # every process, this benchmark's own included
    )


def render(cells: list[Cell], server: str) -> list[str]:
    rows = [
        [
            c.pacing,
            "on (miss, stored)" if c.cache else "off",
            c.short_ms,
            c.long_ms,
            c.per_event_us,
            ", ".join(f"{r:.1f}" for r in c.rounds_us),
            "met" if c.per_event_us <= TARGET_US else "not met",
            c.machine_busy_cores,
        ]
        for c in cells
    ]
    return [
        report.provenance_line(),
        "",
        f"`python -m bench.stream_events --server {server}`: gateway CPU per stream of {SHORT} and {LONG} events "
        f"(full pipeline, one request at a time), and per relayed event = the difference / {LONG - SHORT} "
        f"(median of {ROUNDS} rounds). Target ≤ {TARGET_US:g} µs per event.",
        "",
        report.table(
            [
                "Upstream pacing",
                "Exact cache",
                f"CPU ms / {SHORT}-event stream",
                f"CPU ms / {LONG}-event stream",
                "µs / event",
                "Rounds (µs / event)",
                "Target",
                "Machine busy (cores)",
            ],
            rows,
        ),
        "",
        f"`burst`: the mock sends unpaced (several events per network read); `paced`: "
        f"{PACED_TOKENS_PER_SECOND:g} events/s (about one per read, like a real provider). "
        "Raw results: `docs/results/stream-events.json`.",
    ]


def readme_lines(cells: list[Cell]) -> list[str]:
    """One line per cell for the README: µs per event and whether the target is met."""
    lines = [report.provenance_line(), ""]
    for c in cells:
        verdict = "met" if c.per_event_us <= TARGET_US else "**not met**"
        cache = "exact cache on (answer stored)" if c.cache else "cache off"
        lines.append(
            f"- {c.pacing} upstream, {cache}: **{c.per_event_us:.1f} µs** per event ({verdict}; "
            f"machine busy {c.machine_busy_cores:.2f} cores meanwhile)."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=stack.SERVERS, default="uvicorn")
    parser.add_argument("--requests", type=int, default=30, help="streams per measurement")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    cells: list[Cell] = []
    with stack.backing_services() as backing, stack.mock_upstream(backing.env, backing.logs) as (_, mock):
        secrets = _fixtures(mock)
        with stack.gateway(args.server, backing.env, backing.logs) as (pid, url):
            for pacing, cache in CELLS:
                cells.append(_measure(f"{url}/v1/chat/completions", secrets[cache], pacing, cache, args.requests, pid))
                print(f"{pacing}, cache {'on' if cache else 'off'}: {cells[-1]}", flush=True)
                stack.trim_usage()
    lines = render(cells, args.server)
    print("\n".join(lines))
    report.write("stream-events", {"server": args.server, "cells": [asdict(c) for c in cells]}, "\n".join(lines))
    if not args.no_docs:
        replace_section(PAGE, "stream-events", lines)
        replace_section(README, "stream-events", readme_lines(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

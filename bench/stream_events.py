"""Gateway CPU per relayed stream event: ``python -m bench.stream_events [--server uvicorn] [--requests N]``.

Sets up its own stack (``bench.stack``: embedded PostgreSQL and Redis, the mock
upstream) with the peer benchmark's full pipeline (a key with a budget and
RPM/TPM limits, the usage record, and the exact cache on — every prompt is
unique, so it misses and stores the streamed answer — or off), then streams
answers of ``SHORT`` and ``LONG`` events through one gateway process, one
request at a time, and reads the process's CPU time (its CPU-time clock, to
the nanosecond: ``procs.ClockMeter``). The CPU per relayed event
is the difference between the two per-stream costs divided by the difference in
events, so the per-request work (auth, admission, cache lookup, usage) cancels
out; with the cache on, storing the longer answer is part of it.

Two upstream pacings, because the relay's cost depends on how events arrive:

- ``burst``: the mock sends as fast as it can, so several events arrive in one
  network read (relayed in one write).
- ``paced``: the mock sends ``PACED_TOKENS_PER_SECOND`` events a second, about
  one per network read, as a real provider does. (The mock runs on uvloop, whose
  timers count whole milliseconds: a shorter interval than 1 ms is no pause at
  all, so 1,000 events a second is the fastest real pacing.) A paced stream of
  ``LONG`` events lasts over a second, so fewer of them are measured
  (``--paced-requests``); the CPU clock is read to the nanosecond, so that is
  still plenty.

Beside each cell, the floor: the CPU per event of a bare reader of the same
upstream stream (aiohttp on uvloop, as the gateway reads it, with nothing else
to do), measured the same way in this process. A paced event wakes the gateway
from idle once to read it and once more to write it, and on a virtual machine a
wake-up alone can cost tens of µs; the floor shows how much of a cell is that.

The target (issue 10) is at most ``TARGET_US`` µs of gateway CPU per relayed
event. Results: ``docs/results/stream-events.json`` and the ``stream-events``
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import orjson
import uvloop

from bench import procs, report, stack
from bench.docs import replace_section

SHORT, LONG = 20, 1020
TIER = "events-tier"
UPSTREAM_MODEL = "mock-gpt"
CELLS = (("burst", True), ("paced", True), ("burst", False), ("paced", False))
PACED_TOKENS_PER_SECOND = 1000.0
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
    reader_floor_us: float  # a bare aiohttp reader of the same upstream stream, per event
    relay_floor_us: float  # a bare relay of it on the gateway's stack (bench.bare_relay), per event

    @property
    def own_us(self) -> float:
        """The gateway's own CPU per event: above what the bare relay costs to move it."""
        return round(self.per_event_us - self.relay_floor_us, 2)


def _fixtures(mock_url: str) -> dict[bool, str]:
    """A tier on the mock and two pipeline keys, exact cache on and off; their secrets by cache state."""
    from bench.peers.fixtures import tenant_key
    from tests.factories import make_model, make_provider, make_tier

    provider = make_provider(f"{mock_url}/v1", kind="openai", name="events-mock")
    make_tier(TIER, [make_model(provider, name="events-model", upstream_model=UPSTREAM_MODEL)])
    return {
        True: tenant_key("events-pipeline", semantic=False),
        False: tenant_key("events-no-cache", semantic=False, cache=False),
    }


def _body(pacing: str, events: int, model: str = TIER) -> bytes:
    # The mock answers ``reply`` plus ``words`` filler words, one event per word; ``tps`` paces them.
    tps = f" tps={PACED_TOKENS_PER_SECOND:g}" if pacing == "paced" else ""
    prompt = f"r{uuid.uuid4().hex[:8]} [[mock: reply=ok words={events - 1}{tps}]]"
    return orjson.dumps(
        {
            "model": model,
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


async def _cpu_per_stream(
    url: str, secret: str, pacing: str, events: int, requests: int, pid: int, model: str = TIER
) -> float:
    """Server CPU ms per stream of ``events`` events (one request at a time)."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        received = await _stream(session, url, _body(pacing, events, model))  # warm, and check the count
        if received < events:
            raise RuntimeError(f"asked for {events} events, received {received}")
        meter = procs.ClockMeter(pid)
        meter.begin()
        for _ in range(requests):
            await _stream(session, url, _body(pacing, events, model))
        return meter.end() * 1000 / requests


async def _reader_cpu_per_stream(mock_url: str, pacing: str, events: int, requests: int) -> float:
    """This process's CPU ms per stream of ``events`` events read straight from the mock (no gateway)."""
    url = f"{mock_url}/v1/chat/completions"
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:
        await _read_through(session, url, _body(pacing, events, UPSTREAM_MODEL))  # warm
        started = time.process_time()
        for _ in range(requests):
            await _read_through(session, url, _body(pacing, events, UPSTREAM_MODEL))
        return (time.process_time() - started) * 1000 / requests


async def _read_through(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with session.post(url, data=body) as resp:
        async for _ in resp.content.iter_any():  # what the gateway's upstream read does, and nothing else
            pass


def reader_floor(mock_url: str, pacing: str, requests: int) -> float:
    """µs per event of a bare reader of the mock's stream (uvloop, like the gateway), median of ``ROUNDS``."""
    rounds: list[float] = []
    for _ in range(ROUNDS):
        short = uvloop.run(_reader_cpu_per_stream(mock_url, pacing, SHORT, requests))
        long = uvloop.run(_reader_cpu_per_stream(mock_url, pacing, LONG, requests))
        rounds.append((long - short) * 1000 / (LONG - SHORT))
    return round(statistics.median(rounds), 2)


def relay_floor(mock_url: str, pacing: str, requests: int, env: dict[str, str], logs: Path) -> float:
    """µs per event of ``bench.bare_relay`` under uvicorn relaying the mock's stream, median of ``ROUNDS``."""
    port = procs.free_port()
    command = stack.server_command("uvicorn", port, app="bench.bare_relay:application")  # the gateway's flags
    relay_env = {**env, "BARE_RELAY_UPSTREAM": f"{mock_url}/v1/chat/completions"}
    proc = procs.start(command, relay_env, logs / "bare-relay.log")
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for_http(f"{url}/live", proc)
        rounds = []
        for _ in range(ROUNDS):
            short = asyncio.run(_cpu_per_stream(url, "", pacing, SHORT, requests, proc.pid, UPSTREAM_MODEL))
            long = asyncio.run(_cpu_per_stream(url, "", pacing, LONG, requests, proc.pid, UPSTREAM_MODEL))
            rounds.append((long - short) * 1000 / (LONG - SHORT))
        return round(statistics.median(rounds), 2)
    finally:
        procs.stop(proc)


def _measure(
    url: str, secret: str, pacing: str, cache: bool, requests: int, pid: int, floors: tuple[float, float]
) -> Cell:
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
        reader_floor_us=floors[0],
        relay_floor_us=floors[1],
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
            c.relay_floor_us,
            c.own_us,
            "met" if c.own_us <= TARGET_US else "not met",
            c.reader_floor_us,
            c.machine_busy_cores,
        ]
        for c in cells
    ]
    return [
        report.provenance_line(),
        "",
        f"`python -m bench.stream_events --server {server}`: gateway CPU per stream of {SHORT} and {LONG} events "
        f"(full pipeline, one request at a time), and per relayed event = the difference / {LONG - SHORT} "
        f"(median of {ROUNDS} rounds). Target ≤ {TARGET_US:g} µs of the gateway's own CPU per event: "
        "above what a bare relay on the same stack costs.",
        "",
        report.table(
            [
                "Upstream pacing",
                "Exact cache",
                f"CPU ms / {SHORT}-event stream",
                f"CPU ms / {LONG}-event stream",
                "µs / event",
                "Rounds (µs / event)",
                "Bare relay floor (µs / event)",
                "Gateway's own (µs / event)",
                "Target",
                "Bare reader floor (µs / event)",
                "Machine busy (cores)",
            ],
            rows,
        ),
        "",
        f"`burst`: the mock sends unpaced (several events per network read); `paced`: "
        f"{PACED_TOKENS_PER_SECOND:g} events/s (about one per read, like a real provider). "
        "Bare reader floor: the CPU per event of an aiohttp client on uvloop that only reads the same "
        "upstream stream (what the gateway's upstream read costs with nothing else to do; a paced event "
        "costs a wake-up from idle). Bare relay floor: `bench/bare_relay.py` under uvicorn with the gateway's "
        "flags, which posts to the upstream and writes each read to the client with nothing else to do "
        "(what uvicorn, aiohttp and the event loop cost to move an event); the gateway's own CPU per event "
        "is the rest. Raw results: `docs/results/stream-events.json`.",
    ]


def readme_lines(cells: list[Cell]) -> list[str]:
    """One line per cell for the README: µs per event and whether the target is met."""
    lines = [f"{report.provenance_line()} Raw results: `docs/results/stream-events.json`.", ""]
    for c in cells:
        verdict = "met" if c.own_us <= TARGET_US else "**not met**"
        cache = "exact cache on (answer stored)" if c.cache else "cache off"
        lines.append(
            f"- {c.pacing} upstream, {cache}: **{c.own_us:.1f} µs** of the gateway's own per event ({verdict}) "
            f"of {c.per_event_us:.1f} µs in all; a bare relay of the same stream on the same stack: "
            f"{c.relay_floor_us:.1f} µs, a bare reader: {c.reader_floor_us:.1f} µs; machine busy "
            f"{c.machine_busy_cores:.2f} cores meanwhile."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=stack.SERVERS, default="uvicorn")
    parser.add_argument("--requests", type=int, default=30, help="streams per measurement (burst)")
    parser.add_argument("--paced-requests", type=int, default=10, help="streams per measurement (paced)")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ and the README alone")
    args = parser.parse_args(argv)
    cells: list[Cell] = []
    with stack.backing_services() as backing, stack.mock_upstream(backing.env, backing.logs) as (_, mock):
        secrets = _fixtures(mock)
        floors = {
            pacing: (
                reader_floor(mock, pacing, args.paced_requests if pacing == "paced" else args.requests),
                relay_floor(
                    mock, pacing, args.paced_requests if pacing == "paced" else args.requests, backing.env, backing.logs
                ),
            )
            for pacing in ("burst", "paced")
        }
        with stack.gateway(args.server, backing.env, backing.logs) as (pid, url):
            for pacing, cache in CELLS:
                requests = args.paced_requests if pacing == "paced" else args.requests
                cells.append(
                    _measure(f"{url}/v1/chat/completions", secrets[cache], pacing, cache, requests, pid, floors[pacing])
                )
                print(f"{pacing}, cache {'on' if cache else 'off'}: {cells[-1]}", flush=True)
                stack.trim_usage()
    lines = render(cells, args.server)
    print("\n".join(lines))
    if not args.no_docs:
        results = {"server": args.server, "cells": [{**asdict(c), "own_us": c.own_us} for c in cells]}
        report.write("stream-events", results, "\n".join(lines))
        replace_section(PAGE, "stream-events", lines)
        replace_section(README, "stream-events", readme_lines(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

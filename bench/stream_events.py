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

Beside each cell, two floors. The bare relay (``bench.bare_relay`` under uvicorn with the
gateway's flags, up for the whole run) and the gateway take turns stream by stream within each
round, so both are measured on the same machine state (a paced event costs about 100 µs of
wake-ups either way, and the machine drifts by more than the few µs the target is about): the
gateway's own CPU per event is the median of the per-round differences. The bare reader
(aiohttp on uvloop reading the same upstream stream with nothing else to do, in this process)
shows what the upstream read alone costs.

The target (issue 10) is at most ``TARGET_US`` µs of the gateway's own CPU per relayed
event. Results: ``docs/results/stream-events.json`` and the ``stream-events``
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import uuid
from collections.abc import Iterator
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
    relay_floor_us: float  # a bare relay of it on the gateway's stack (bench.bare_relay), per event (median)
    own_rounds_us: tuple[float, ...]  # per round: the gateway's µs per event minus the relay's, same round

    @property
    def own_us(self) -> float:
        """The gateway's own CPU per event: above what the bare relay costs to move it (median of rounds)."""
        return round(statistics.median(self.own_rounds_us), 2)


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


@dataclass(frozen=True, slots=True)
class Server:
    """A server the streams go through: the gateway (a key, a tier) or the bare relay (the upstream model)."""

    url: str
    pid: int
    secret: str = ""
    model: str = TIER


async def _stream(session: aiohttp.ClientSession, url: str, body: bytes) -> int:
    """One streamed request, read to the end; the number of data events received."""
    async with session.post(url, data=body) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {(await resp.read())[:300]!r}")
        raw = await resp.read()
    return raw.count(b"\ndata: ") + raw.startswith(b"data: ")


async def _stream_cpu_ms(session: aiohttp.ClientSession, server: Server, pacing: str, events: int) -> float:
    """The server's CPU ms for one stream of ``events`` events."""
    meter = procs.ClockMeter(server.pid)
    meter.begin()
    received = await _stream(session, server.url, _body(pacing, events, server.model))
    cpu_ms = meter.end() * 1000
    if received < events:
        raise RuntimeError(f"asked {server.url} for {events} events, received {received}")
    return cpu_ms


async def _interleaved_costs(servers: list[Server], pacing: str, requests: int) -> list[tuple[float, float]]:
    """Per server, its mean CPU ms per stream of ``SHORT`` and of ``LONG`` events, the servers taking turns
    stream by stream (so the machine's drift, larger than what is measured, reaches all of them alike)."""
    sessions = [
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {s.secret}", "Content-Type": "application/json"})
        for s in servers
    ]
    try:
        for session, server in zip(sessions, servers, strict=True):
            await _stream_cpu_ms(session, server, pacing, SHORT)  # warm
        sums = [[0.0, 0.0] for _ in servers]
        for _ in range(requests):
            for events, column in ((SHORT, 0), (LONG, 1)):
                for index, (session, server) in enumerate(zip(sessions, servers, strict=True)):
                    sums[index][column] += await _stream_cpu_ms(session, server, pacing, events)
        return [(short / requests, long / requests) for short, long in sums]
    finally:
        for session in sessions:
            await session.close()


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


def _per_event_us(costs: tuple[float, float]) -> float:
    short, long = costs
    return (long - short) * 1000 / (LONG - SHORT)


@contextlib.contextmanager
def bare_relay(mock_url: str, env: dict[str, str], logs: Path) -> Iterator[Server]:
    """``bench.bare_relay`` under uvicorn with the gateway's flags, relaying the mock's stream."""
    port = procs.free_port()
    command = stack.server_command("uvicorn", port, app="bench.bare_relay:application")
    relay_env = {**env, "BARE_RELAY_UPSTREAM": f"{mock_url}/v1/chat/completions"}
    proc = procs.start(command, relay_env, logs / "bare-relay.log")
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for_http(f"{url}/live", proc)
        yield Server(url, proc.pid, model=UPSTREAM_MODEL)
    finally:
        procs.stop(proc)


def _measure(gateway: Server, relay: Server, pacing: str, cache: bool, requests: int, reader_floor_us: float) -> Cell:
    """``ROUNDS`` rounds, in each the bare relay and the gateway taking turns stream by stream."""
    machine = procs.MachineMeter()
    machine.begin()
    gateway_costs: list[tuple[float, float]] = []
    relay_rounds: list[float] = []
    for _ in range(ROUNDS):
        relay_costs, costs = uvloop.run(_interleaved_costs([relay, gateway], pacing, requests))
        relay_rounds.append(_per_event_us(relay_costs))
        gateway_costs.append(costs)
    wall, busy, _ = machine.end()
    gateway_rounds = [_per_event_us(costs) for costs in gateway_costs]
    return Cell(
        pacing=pacing,
        cache=cache,
        short_ms=statistics.median(short for short, _ in gateway_costs),
        long_ms=statistics.median(long for _, long in gateway_costs),
        per_event_us=statistics.median(gateway_rounds),
        rounds_us=tuple(round(r, 2) for r in gateway_rounds),
        machine_busy_cores=round(busy / wall, 2),  # every process, this benchmark's own included
        reader_floor_us=reader_floor_us,
        relay_floor_us=round(statistics.median(relay_rounds), 2),
        own_rounds_us=tuple(round(g - r, 2) for g, r in zip(gateway_rounds, relay_rounds, strict=True)),
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
            f"{c.own_us:g} ({', '.join(f'{r:.1f}' for r in c.own_rounds_us)})",
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
        "above what a bare relay on the same stack costs, the two taking turns stream by stream in each round "
        "(the median of the per-round differences).",
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
                "Gateway's own (µs / event; rounds)",
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

        def requests(pacing: str) -> int:
            return args.paced_requests if pacing == "paced" else args.requests

        readers = {pacing: reader_floor(mock, pacing, requests(pacing)) for pacing in ("burst", "paced")}
        with (
            bare_relay(mock, backing.env, backing.logs) as relay,
            stack.gateway(args.server, backing.env, backing.logs) as (pid, url),
        ):
            for pacing, cache in CELLS:
                gateway = Server(f"{url}/v1/chat/completions", pid, secrets[cache])
                cells.append(_measure(gateway, relay, pacing, cache, requests(pacing), readers[pacing]))
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

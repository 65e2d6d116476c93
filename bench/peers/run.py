"""Measuring: one cell = one server, one mode (JSON or a 20-chunk stream), one concurrency.

Each cell warms up, then loads the server for ``duration`` seconds while the
CPU of the server's process group, the mock upstream, Redis and PostgreSQL and
the load generator are read before and after. CPU per request is the
server's CPU over the good answers of the measured phase. ``other_cores`` is
CPU that processes outside the benchmark used meanwhile (a shared machine).
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import orjson

from bench import procs
from bench.peers import cpu, loadgen
from bench.peers.servers import Route


def say(message: str) -> None:
    """Progress on stderr (Django's logging settings, loaded with the stack, would swallow INFO records)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# Twenty words: the mock answers with exactly these, one streamed chunk per word.
REPLY_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett "
    "kilo lima mike november oscar papa quebec romeo sierra tango"
)
STREAM_CHUNKS = len(REPLY_WORDS.split())
ID_SLOT = "@@ID@@"
IDLE_WINDOW_S = 0.25
IDLE_CORES = 0.05  # "idle": the server used less than 5 % of a core over a window
IDLE_MAX_WAIT_S = 20.0
MIN_COMPLETED_PER_CONNECTION = 2
LONG_PHASE_FACTOR = 4


@dataclass(frozen=True, slots=True)
class Plan:
    duration: float
    warmup: float
    concurrency: int  # the high one; concurrency 1 is always measured
    tool: str
    rounds: int
    first_warmup: float  # once per server before the first round (JIT, caches, connection pools)

    def cells(self) -> list[tuple[bool, int]]:
        """(stream, concurrency) of the four cells of a row."""
        return [(stream, c) for stream in (False, True) for c in (1, self.concurrency)]


def request_for(route: Route, *, stream: bool) -> loadgen.Request:
    """The benchmark's chat request to ``route``: a unique prompt, a 20-word answer."""
    content = f"Request {ID_SLOT}: summarise where the benchmark stands. [[mock: reply={quote(REPLY_WORDS, safe='')}]]"
    payload: dict[str, object] = {"model": route.model, "messages": [{"role": "user", "content": content}]}
    if stream:
        payload |= {"stream": True, "stream_options": {"include_usage": True}}
    prefix, suffix = orjson.dumps(payload).decode().split(ID_SLOT)
    headers = {"Content-Type": "application/json", **route.headers}
    return loadgen.Request(route.url, headers, prefix, suffix, "[DONE]" if stream else '"choices"')


@dataclass(slots=True)
class Meters:
    """The processes whose CPU a cell reads: the server (a process group, or pids) and the helpers."""

    server_pgid: int | None
    server_pids: list[int]
    mock_pid: int
    redis_pid: int | None
    postgres: procs.CpuMeter | None

    def server_seconds(self) -> float:
        if self.server_pgid is not None:
            return cpu.group_cpu(self.server_pgid).total
        return cpu.pids_cpu(self.server_pids)

    def snapshot(self) -> dict[str, float]:
        rusage_self = resource.getrusage(resource.RUSAGE_SELF)
        rusage_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "server": self.server_seconds(),
            "mock": cpu.pids_cpu([self.mock_pid]) if self.mock_pid not in self.server_pids else 0.0,
            "redis": cpu.pids_cpu([self.redis_pid]) if self.redis_pid else 0.0,
            "load": rusage_self.ru_utime + rusage_self.ru_stime + rusage_children.ru_utime + rusage_children.ru_stime,
            "machine": cpu.machine_busy(),
        }


def wait_idle(meters: Meters) -> float:
    """Wait until the server's process group is nearly idle (work left from the last load is done); seconds waited.

    An overloaded server still works through the requests the previous phase left
    in flight after the load generator stopped; measuring before that is done
    would charge their CPU to the next cell.
    """
    began = time.monotonic()
    last = meters.server_seconds()
    while time.monotonic() - began < IDLE_MAX_WAIT_S:
        time.sleep(IDLE_WINDOW_S)
        now = meters.server_seconds()
        if now - last < IDLE_WINDOW_S * IDLE_CORES:
            break
        last = now
    return time.monotonic() - began


def _measured_phase(
    request: loadgen.Request, connections: int, duration: float, plan: Plan, meters: Meters
) -> tuple[dict[str, object], dict[str, float], float]:
    """One load phase between two readings of every meter, taken as the load starts and stops."""
    start = meters.snapshot()
    if meters.postgres is not None:
        meters.postgres.begin()
    wall = time.perf_counter()
    result = loadgen.run(plan.tool, request, connections, duration)
    wall = time.perf_counter() - wall
    end = meters.snapshot()
    used = {name: end[name] - start[name] for name in start}
    used["postgres"] = meters.postgres.end().total if meters.postgres is not None else 0.0
    return result, used, wall


def measure_cell(
    label: str, route: Route, *, stream: bool, connections: int, plan: Plan, meters: Meters, before: Callable[[], None]
) -> dict[str, object]:
    """Warm up, wait for the server to idle, then load it for ``plan.duration`` s and read every CPU meter around it.

    CPU per request = the CPU of the measured phase over the good answers
    completed in it. The requests still in flight when the load stops bias
    that up by at most ``connections`` half-done requests, so a phase that
    completes fewer than ``MIN_COMPLETED_PER_CONNECTION`` x ``connections``
    answers (a slow server) is measured again, ``LONG_PHASE_FACTOR`` times longer.
    """
    request = request_for(route, stream=stream)
    before()
    if plan.warmup > 0:
        loadgen.run(plan.tool, request, connections, plan.warmup)
    idle_wait = wait_idle(meters)
    duration = plan.duration
    result, used, wall = _measured_phase(request, connections, duration, plan, meters)
    if int(result["good"]) < MIN_COMPLETED_PER_CONNECTION * connections:  # type: ignore[call-overload]
        idle_wait += wait_idle(meters)
        duration = plan.duration * LONG_PHASE_FACTOR
        result, used, wall = _measured_phase(request, connections, duration, plan, meters)
    good = int(result["good"])  # type: ignore[call-overload]
    per = 1000 / good if good else math.nan
    ours = sum(v for k, v in used.items() if k != "machine")
    cell: dict[str, object] = {
        "target": label,
        "stream": stream,
        "concurrency": connections,
        **result,
        "duration_s": duration,
        "idle_wait_s": idle_wait,
        "cpu_ms_per_req": used["server"] * per,
        "server_cores": used["server"] / wall,
        "mock_cpu_ms_per_req": used["mock"] * per,
        "redis_cpu_ms_per_req": used["redis"] * per,
        "postgres_cpu_ms_per_req": used["postgres"] * per,
        "load_cpu_ms_per_req": used["load"] * per,
        "other_cores": max(0.0, used["machine"] - ours) / wall,
    }
    say(
        f"  {label:25} {'stream' if stream else 'json':6} c={connections:<3} {result['rps']:8.1f} rps  "
        f"p50 {result['p50_ms']:8.2f} ms  p99 {result['p99_ms']:8.2f} ms  errors {result['errors']}  "
        f"CPU {cell['cpu_ms_per_req']:.3f} ms/req  other load {cell['other_cores']:.2f} cores"
    )
    return cell


@dataclass(slots=True)
class Target:
    """One row of the table: a server reached through ``route``, with its CPU meters."""

    label: str
    route: Route
    meters: Meters
    before: Callable[[], None] = field(default=lambda: None)


def warm(target: Target, plan: Plan) -> None:
    """Check the answers, then load the fresh server once before any measurement."""
    check(target.route)
    for stream, connections in plan.cells():
        target.before()
        loadgen.run(plan.tool, request_for(target.route, stream=stream), connections, plan.first_warmup / 4)


def measure_round(target: Target, plan: Plan, number: int) -> list[dict[str, object]]:
    """The four cells of one row: JSON and stream, at concurrency 1 and ``plan.concurrency``."""
    cells = []
    for stream, connections in plan.cells():
        cell = measure_cell(
            target.label,
            target.route,
            stream=stream,
            connections=connections,
            plan=plan,
            meters=target.meters,
            before=target.before,
        )
        cell["round"] = number
        cells.append(cell)
    return cells


def check(route: Route) -> None:
    """One JSON and one streamed request before measuring, so a broken setup fails loudly."""
    import urllib.error
    import urllib.request

    for stream in (False, True):
        request = request_for(route, stream=stream)
        body = f"{request.prefix}check-{time.monotonic_ns()}{request.suffix}".encode()
        http = urllib.request.Request(request.url, data=body, headers=request.headers, method="POST")
        try:
            with urllib.request.urlopen(http, timeout=120) as resp:
                answer = resp.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{request.url} answered {exc.code}: {exc.read()[:300]!r}") from None
        if request.marker.encode() not in answer:
            raise RuntimeError(f"{request.url} answered without {request.marker}: {answer[:300]!r}")
        if stream and answer.count(b"data: ") < STREAM_CHUNKS:
            raise RuntimeError(f"{request.url} streamed fewer than {STREAM_CHUNKS} events: {answer[:300]!r}")


def cache_drain_cost() -> dict[str, float]:
    """What inserting the stored answers costs the Celery worker, outside every server's CPU above.

    The gateway rows queue each stored answer in Redis (``caching.entry_queue``) and no worker runs
    during the benchmark; this drains what they left (at most ``GATEWAY_CACHE_QUEUE_MAX``) in this
    process and returns its CPU per entry (PostgreSQL's own work not included).
    """
    from caching import entry_queue

    started = time.process_time()
    drained = 0
    while taken := entry_queue.drain():
        drained += taken
    seconds = time.process_time() - started
    return {"entries": drained, "cpu_us_per_entry": round(seconds / drained * 1e6, 1) if drained else 0.0}

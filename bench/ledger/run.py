"""One fault run: the load with its faults injected, then a spool replay that Redis dies in, then a full drain."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import redis

from bench.ledger import load
from bench.ledger.rig import Rig
from bench.ledger.world import World
from billing import inflight
from billing.usage import GROUP, STREAM

logger = logging.getLogger(__name__)

# How long the mock holds the answers that finish while Redis is down: long enough to see all six
# waiting (reading the mock's whole ledger takes a while on a busy machine) before Redis is killed.
SPOOL_DELAY = 4.0


@dataclass(frozen=True)
class Fault:
    """One injected fault: what, when (wall clock, like the mock's records) and for how long."""

    name: str
    at: float
    seconds: float
    detail: str = ""


@dataclass
class RunResult:
    outcomes: list[load.Outcome]
    faults: list[Fault] = field(default_factory=list)
    spooled_outcomes: list[load.Outcome] = field(default_factory=list)
    seconds: float = 0.0


def _wait(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def _redis(rig: Rig) -> redis.Redis:
    return redis.Redis.from_url(rig.redis_url, socket_timeout=2)


def _pending(rig: Rig) -> int:
    try:
        return int(_redis(rig).xpending(STREAM, GROUP)["pending"])
    except redis.RedisError:
        return 0


class Faults:
    """The faults, each a blocking step run off the event loop; each returns what it did."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.log: list[Fault] = []

    def _note(self, name: str, began: float, detail: str = "") -> None:
        self.log.append(Fault(name, began, round(time.time() - began, 2), detail))

    def redis_crash(self, down: float = 1.0) -> None:
        began = time.time()
        self.rig.kill_redis()
        time.sleep(down)
        self.rig.start_redis()
        self._note("Redis SIGKILLed and restarted (append-only file replayed)", began)

    def drainer_kill(self) -> None:
        began = time.time()
        mid_batch = _wait(lambda: _pending(self.rig) > 0, 30.0, 0.01)  # read, committed, not acknowledged
        self.rig.kill_drainer()
        self.rig.start_drainer()
        self._note("drainer SIGKILLed and restarted", began, "mid-batch" if mid_batch else "between batches")

    def postgres_down(self, down: float = 1.5) -> None:
        """Stop PostgreSQL (immediate: a crash) while the drainer has a batch in hand, then start it again."""
        began = time.time()
        in_batch = _wait(lambda: _pending(self.rig) > 0, 30.0, 0.01)
        self.rig.stop_postgres()
        time.sleep(down)
        self.rig.start_postgres()
        self._note(
            "PostgreSQL stopped (immediate) and restarted", began, "mid-batch" if in_batch else "between batches"
        )

    def gateway_kill(self, index: int = 1) -> None:
        """SIGKILL a gateway while it relays a stream (an admitted one: its in-flight record is in Redis)."""
        began = time.time()
        mid_stream = _wait(lambda: load.streams_in_flight[index] > 0 and _streams_admitted(self.rig, index) > 0, 30.0)
        self.rig.kill_gateway(index)
        killed = time.time()
        time.sleep(0.5)
        self.rig.start_gateway(index)
        self.log.append(
            Fault(
                f"gateway {index} SIGKILLed and restarted",
                killed,
                round(time.time() - began, 2),
                "mid-stream" if mid_stream else "no stream in flight",
            )
        )


def _streams_admitted(rig: Rig, index: int) -> int:
    """Streams in flight on gateway ``index``, by its in-flight records (their owner names hold its pid)."""
    proc = rig.gateways[index]
    if proc is None:
        return 0
    try:
        client = _redis(rig)
        owners = [o.decode() for o in client.smembers(inflight.OWNERS) if f"-{proc.pid}-".encode() in o]
        records = [raw for owner in owners for raw in client.hvals(inflight.owner_key(owner))]
    except redis.RedisError:
        return 0
    return sum(1 for raw in records if b'"stream":true' in raw)


def _close_connections() -> None:
    """Drop this process's pooled PostgreSQL connections: they died with the stopped server."""
    from django.db import connections

    for conn in connections.all():
        conn.close()
        if hasattr(conn, "close_pool"):
            conn.close_pool()


async def _faulted_load(
    rig: Rig, world: World, faults: Faults, *, requests: int, concurrency: int
) -> list[load.Outcome]:
    schedule = [
        (0.15, faults.redis_crash),
        (0.3, faults.drainer_kill),
        (0.45, faults.postgres_down),
        (0.6, faults.gateway_kill),
    ]
    reached = [asyncio.Event() for _ in schedule]

    def progress(done: int) -> None:
        for (fraction, _), event in zip(schedule, reached, strict=True):
            if done >= fraction * requests:
                event.set()

    async def inject() -> None:
        for (_, step), event in zip(schedule, reached, strict=True):
            await event.wait()
            await asyncio.to_thread(step)

    injector = asyncio.ensure_future(inject())
    outcomes = await load.run_load(
        rig.urls, world, requests=requests, concurrency=concurrency, on_progress=progress, until=injector.done
    )
    await injector
    return outcomes


async def _spool_replay_fault(rig: Rig, world: World, faults: Faults) -> list[load.Outcome]:
    """Answers finished while Redis is down go to the spool; Redis then dies again during their replay."""
    rig.kill_drainer()
    headers = {"Authorization": f"Bearer {world.secret}", **load.NO_STORE}
    content = f"spool me [[mock: delay={SPOOL_DELAY} words=9]]"
    body = {"model": "ledger-std", "messages": [{"role": "user", "content": content}]}

    async def one(index: int) -> load.Outcome:
        outcome = load.Outcome(kind="spooled", gateway=index % 2, started=time.time())
        async with httpx2.AsyncClient() as client:
            response = await client.post(
                f"{rig.urls[index % 2]}/v1/chat/completions", headers=headers, json=body, timeout=30
            )
        outcome.status, outcome.request_id, outcome.ended = (
            response.status_code,
            response.headers["x-request-id"],
            time.time(),
        )
        return outcome

    tasks = [asyncio.ensure_future(one(i)) for i in range(6)]
    sent = asyncio.gather(*tasks)

    # Kill Redis once all six are admitted and waiting for the upstream (the mock has them).
    # (A request a gateway refused meanwhile, e.g. on a pooled connection the PostgreSQL restart broke,
    # never gets there: wait for those still in flight.)
    def all_waiting() -> bool:
        in_flight = sum(1 for task in tasks if not task.done())
        return in_flight > 0 and _upstream_waiting(rig) >= in_flight

    await asyncio.to_thread(_wait, all_waiting, 60.0)
    began = time.time()
    await asyncio.to_thread(rig.kill_redis)
    outcomes = await sent
    spooled = sum(1 for path in rig.spool.glob("usage-*.jsonl") for line in path.read_bytes().splitlines() if line)
    await asyncio.to_thread(rig.start_redis)
    faults.log.append(
        Fault(
            "Redis down while answers finished (records spooled)",
            began,
            round(time.time() - began, 2),
            f"{spooled} records spooled",
        )
    )
    began = time.time()
    rig.start_drainer(pause=1.0)  # each replayed file: committed, then a pause before it is deleted
    replaying = await asyncio.to_thread(_wait, lambda: any(rig.spool.glob("usage-*.replaying")), 60.0)
    await asyncio.to_thread(faults.redis_crash, 1.0)
    faults.log[-1] = Fault(
        "Redis SIGKILLed during a spool replay",
        began,
        round(time.time() - began, 2),
        "during replay" if replaying else "replay not seen",
    )
    return list(outcomes)


def _upstream_waiting(rig: Rig) -> int:
    records = httpx2.get(f"{rig.mock_url}/_mock/events", timeout=5).json()
    return sum(1 for r in records if r["directives"].get("delay") == SPOOL_DELAY and r["status"] is None)


def _drained(rig: Rig) -> bool:
    """Every record in PostgreSQL, and every in-flight record reaped (dead gateway) or removed."""
    try:
        client = _redis(rig)
        stream_empty = client.xlen(STREAM) == 0 and _pending(rig) == 0
        in_flight = sum(inflight.in_flight(client).values())
    except redis.RedisError:
        return False
    return stream_empty and in_flight == 0 and not any(rig.spool.glob("usage-*"))


def run(rig: Rig, world: World, *, requests: int, concurrency: int) -> RunResult:
    """The load with its faults, the spool replay fault, and a wait until every record was drained."""
    began = time.monotonic()
    faults = Faults(rig)
    outcomes = asyncio.run(_faulted_load(rig, world, faults, requests=requests, concurrency=concurrency))
    spooled = asyncio.run(_spool_replay_fault(rig, world, faults))
    if not _wait(lambda: _drained(rig), 180.0, 0.2):
        raise RuntimeError(f"usage records were never drained; see {Path(rig.logs)}")
    rig.kill_drainer()
    _close_connections()  # before the check reads PostgreSQL: the restart broke the pooled ones
    return RunResult(outcomes=outcomes, faults=faults.log, spooled_outcomes=spooled, seconds=time.monotonic() - began)

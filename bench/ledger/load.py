"""The mixed load of a fault run: JSON, streams, cascades, cache hits, clients that leave, 401s, poison.

Requests are spread round-robin over the gateways with a fixed concurrency;
the kind of each comes from a seeded generator, so a run is repeatable in
what it asks (not in when the faults land).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from bench.ledger.world import HEAVY_TIER, World

# kind -> weight
KINDS = {
    "json": 26,
    "stream": 18,
    "cascade": 8,
    "cascade_escalated": 6,
    "cached": 8,
    "leave_json": 8,
    "leave_stream": 4,
    "unauthenticated": 6,
    "poison": 6,
    "budgeted": 10,
}
LEAVE_AFTER_SECONDS = 0.3
NO_STORE = {"X-Gateway-Cache": "no-store"}


@dataclass
class Outcome:
    """What the client saw of one request."""

    kind: str
    gateway: int
    status: int | None = None
    request_id: str = ""
    error: str = ""  # a transport error (gateway killed or unreachable), or "left" for a client that left
    started: float = 0.0  # wall clock, like the mock's records
    ended: float = 0.0


def _text(words: int, extra: str = "") -> str:
    return f"ledger {uuid.uuid4().hex[:10]} {extra}[[mock: words={words}]]"


def _request(kind: str, world: World, rng: random.Random) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and body of a request of ``kind``."""
    bearer = {"Authorization": f"Bearer {world.secret}", **NO_STORE}
    user = {"role": "user", "content": _text(rng.randint(3, 30))}
    if kind == "json":
        return bearer, {"model": "ledger-std", "messages": [user]}
    if kind == "stream":
        paced = {"role": "user", "content": _text(rng.randint(10, 30), "[[mock: tps=60]] ")}
        return bearer, {"model": "ledger-std", "messages": [paced], "stream": True}
    if kind == "cascade":
        return bearer, {"model": HEAVY_TIER, "messages": [user], "stream": rng.random() < 0.5}
    if kind == "cascade_escalated":
        refused = {"role": "user", "content": _text(8, "[[mock: refuse=1 model=ledger-cheap-up]] ")}
        return bearer, {"model": HEAVY_TIER, "messages": [refused], "stream": rng.random() < 0.5}
    if kind == "cached":
        same = {"role": "user", "content": f"ledger cached question {rng.randint(1, 3)} [[mock: words=12]]"}
        return {"Authorization": f"Bearer {world.secret}"}, {"model": "ledger-std", "messages": [same]}
    if kind == "leave_json":
        slow = {"role": "user", "content": _text(20, "[[mock: delay=1]] ")}
        return bearer, {"model": "ledger-std", "messages": [slow]}
    if kind == "leave_stream":
        slow = {"role": "user", "content": _text(60, "[[mock: tps=20]] ")}
        return bearer, {"model": "ledger-std", "messages": [slow], "stream": True}
    if kind == "unauthenticated":
        return {"Authorization": f"Bearer gw-not-a-key-{uuid.uuid4().hex}"}, {"model": "ledger-std", "messages": [user]}
    if kind == "poison":
        model = rng.choice(["x" * 300, "ledger\x00std", "ledger-std" + "é" * 250])
        return bearer, {"model": model, "messages": [user]}
    if kind == "budgeted":
        budgeted = {"model": "ledger-std", "messages": [user], "max_tokens": 40}
        return {"Authorization": f"Bearer {world.budget_secret}", **NO_STORE}, budgeted
    raise ValueError(kind)


# Streams being read right now, per gateway index (the gateway kill waits for one to be in flight).
streams_in_flight: Counter[int] = Counter()


async def _send(
    client: httpx2.AsyncClient, urls: list[str], gateway: int, kind: str, headers: dict[str, str], body: dict[str, Any]
) -> Outcome:
    outcome = Outcome(kind=kind, gateway=gateway, started=time.time())
    endpoint = f"{urls[gateway]}/v1/chat/completions"
    streaming = bool(body.get("stream"))
    streams_in_flight[gateway] += streaming
    try:
        if kind == "leave_json":
            try:
                response = await client.post(endpoint, headers=headers, json=body, timeout=LEAVE_AFTER_SECONDS)
                outcome.status = response.status_code  # answered (an error) before the client left
            except httpx2.TimeoutException:
                outcome.error = "left"
        elif body.get("stream"):
            async with client.stream("POST", endpoint, headers=headers, json=body, timeout=30) as response:
                outcome.status = response.status_code
                outcome.request_id = response.headers.get("x-request-id", "")
                lines = 0
                async for _ in response.aiter_lines():
                    lines += 1
                    if kind == "leave_stream" and lines >= 6:
                        outcome.error = "left"
                        break
        else:
            response = await client.post(endpoint, headers=headers, json=body, timeout=30)
            outcome.status = response.status_code
            outcome.request_id = response.headers.get("x-request-id", "")
    except httpx2.HTTPError as exc:
        outcome.error = outcome.error or type(exc).__name__
    finally:
        streams_in_flight[gateway] -= streaming
    outcome.ended = time.time()
    return outcome


async def run_load(
    urls: list[str],
    world: World,
    *,
    requests: int,
    concurrency: int,
    seed: int = 12,
    on_progress: Callable[[int], object] | None = None,
    until: Callable[[], bool] | None = None,
) -> list[Outcome]:
    """Send at least ``requests`` mixed requests over ``urls`` with ``concurrency`` in flight.

    With ``until``, the load goes on past ``requests`` until it returns true (the faults are done).
    """
    rng = random.Random(seed)
    names, weights = list(KINDS), list(KINDS.values())
    outcomes: list[Outcome] = []
    issued = 0

    def next_plan() -> tuple[int, str, dict[str, str], dict[str, Any]] | None:
        nonlocal issued
        if issued >= requests and (until is None or until()):
            return None
        kind = rng.choices(names, weights=weights)[0]
        issued += 1
        return (issued - 1, kind, *_request(kind, world, rng))

    limits = httpx2.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits) as client:

        async def worker() -> None:
            while (plan := next_plan()) is not None:
                index, kind, headers, body = plan
                outcomes.append(await _send(client, urls, index % len(urls), kind, headers, body))
                if on_progress is not None:
                    on_progress(len(outcomes))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def summary(outcomes: list[Outcome]) -> dict[str, Counter[str]]:
    """Per kind, how the requests ended (status code, transport error or "left")."""
    table: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        ending = outcome.error or str(outcome.status)
        table.setdefault(outcome.kind, Counter())[ending] += 1
    return table

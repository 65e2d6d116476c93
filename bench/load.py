"""A bounded asyncio load generator (aiohttp) and latency statistics.

A fixed number of workers, each with its own request loop, share one pooled
session (keep-alive, one connection per worker). A run stops by itself when the
duration is over or the request budget is spent, whichever comes first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint to load: URL, headers, body and whether it streams."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    stream: bool


@dataclass(slots=True)
class Samples:
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES and message not in self.error_samples:
            self.error_samples.append(message)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


async def _one_plain(session: aiohttp.ClientSession, target: Target, samples: Samples) -> None:
    started = time.perf_counter()
    async with session.post(target.url, data=target.body, headers=target.headers) as resp:
        body = await resp.read()
    elapsed = time.perf_counter() - started
    if resp.status != 200 or b'"choices"' not in body:
        samples.error(f"HTTP {resp.status}: {body[:160]!r}")
        return
    samples.latencies.append(elapsed)


async def _one_stream(session: aiohttp.ClientSession, target: Target, samples: Samples) -> None:
    started = time.perf_counter()
    async with session.post(target.url, data=target.body, headers=target.headers) as resp:
        first = await resp.content.readany()
        ttfb = time.perf_counter() - started
        tail = first[-64:]
        async for chunk in resp.content.iter_any():
            tail = (tail + chunk)[-64:]
    elapsed = time.perf_counter() - started
    if resp.status != 200 or b"[DONE]" not in tail:
        samples.error(f"HTTP {resp.status}: stream ended with {tail!r}")
        return
    samples.latencies.append(elapsed)
    samples.ttfbs.append(ttfb)


async def _worker(
    session: aiohttp.ClientSession, target: Target, samples: Samples, deadline: float, budget: list[int]
) -> None:
    one = _one_stream if target.stream else _one_plain
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        try:
            await one(session, target, samples)
        except (aiohttp.ClientError, TimeoutError) as exc:
            samples.error(f"{exc.__class__.__name__}: {exc}"[:200])


async def _phase(
    session: aiohttp.ClientSession, target: Target, concurrency: int, duration: float, max_requests: int
) -> Samples:
    samples = Samples()
    budget = [max_requests]
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(_worker(session, target, samples, deadline, budget) for _ in range(concurrency)))
    samples.elapsed = time.perf_counter() - started
    return samples


async def run(
    target: Target,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    max_requests: int,
    on_start: Callable[[], None] = lambda: None,
    on_stop: Callable[[], None] = lambda: None,
) -> Samples:
    """Warm up (connections, caches), then measure; ``on_start``/``on_stop`` bracket the measured phase."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, timeout=REQUEST_TIMEOUT, skip_auto_headers=("User-Agent",)
    ) as session:
        if warmup > 0:
            await _phase(session, target, concurrency, warmup, max_requests)
        on_start()
        samples = await _phase(session, target, concurrency, duration, max_requests)
        on_stop()
    return samples


def summarise(samples: Samples) -> dict[str, float | int | list[str]]:
    """Requests, RPS and latency percentiles in milliseconds."""
    done = len(samples.latencies)
    ms = 1000.0
    summary: dict[str, float | int | list[str]] = {
        "requests": done,
        "errors": samples.errors,
        "seconds": round(samples.elapsed, 3),
        "rps": done / samples.elapsed if samples.elapsed else 0.0,
        "p50_ms": percentile(samples.latencies, 50) * ms,
        "p99_ms": percentile(samples.latencies, 99) * ms,
    }
    if samples.ttfbs:
        summary["ttfb_p50_ms"] = percentile(samples.ttfbs, 50) * ms
        summary["ttfb_p99_ms"] = percentile(samples.ttfbs, 99) * ms
    if samples.error_samples:
        summary["error_samples"] = samples.error_samples
    return summary

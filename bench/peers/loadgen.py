"""Closed-loop load on one endpoint: wrk with ``wrk.lua`` (preferred) or a small aiohttp client.

Both send ``prefix + "<run>-<worker>-<n>" + suffix`` as the body: a unique prompt per
request, also across runs (a prompt sent again would be an exact-cache hit). They keep
``connections`` keep-alive connections busy for ``seconds``, count as an error every answer
that is not a 200 containing ``marker`` (and every connection error or timeout), and report
latency percentiles in ms.
The runs are bounded by time; targets are on the loopback interface only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
REQUEST_TIMEOUT_S = 10
JSON_TAG = "PEERS-JSON "


@dataclass(frozen=True, slots=True)
class Request:
    """What to send: URL, headers, the body around the unique id, and the text a good answer contains."""

    url: str
    headers: dict[str, str]
    prefix: str
    suffix: str
    marker: str


def available_tool(preferred: str) -> str:
    """``wrk`` when asked for and installed, else ``python`` (the aiohttp client)."""
    if preferred == "wrk" and shutil.which("wrk"):
        return "wrk"
    return "python"


def for_one_run(request: Request) -> Request:
    """``request`` with a new run id before the per-request id.

    wrk and the aiohttp client number each run's requests from 1 again: without the run id,
    every warm-up and measured phase after the first repeats earlier prompts, which the
    gateway then answers from its exact cache instead of calling the upstream.
    """
    return dataclasses.replace(request, prefix=f"{request.prefix}{secrets.token_hex(4)}-")


def run(tool: str, request: Request, connections: int, seconds: float) -> dict[str, object]:
    """One load phase; returns requests, good, errors, seconds, rps and p50/p90/p99/max in ms."""
    if not request.url.startswith(("http://127.", "http://localhost")):
        raise ValueError(f"the peer benchmark only loads loopback addresses, not {request.url}")
    request = for_one_run(request)
    if tool == "wrk":
        return _run_wrk(request, connections, seconds)
    return asyncio.run(_run_python(request, connections, seconds))


def _run_wrk(request: Request, connections: int, seconds: float) -> dict[str, object]:
    headers = [f"{name}: {value}" for name, value in request.headers.items()]
    args = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={REQUEST_TIMEOUT_S}s",
        "-s", str(WRK_SCRIPT), request.url, "--", request.prefix, request.suffix, request.marker, *headers,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=seconds + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(JSON_TAG)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary (exit {done.returncode}): {done.stderr[-500:]}")
    raw = orjson.loads(line[len(JSON_TAG) :])
    transport_errors = sum(int(raw[k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    requests = int(raw["requests"])
    elapsed = int(raw["duration_us"]) / 1e6
    good = requests - int(raw["bad_answers"])
    return {
        "requests": requests,
        "sent": int(raw["sent"]),
        "good": good,
        "errors": int(raw["bad_answers"]) + transport_errors,
        "seconds": elapsed,
        "rps": good / elapsed if elapsed else 0.0,
        "p50_ms": int(raw["p50_us"]) / 1000,
        "p90_ms": int(raw["p90_us"]) / 1000,
        "p99_ms": int(raw["p99_us"]) / 1000,
        "max_ms": int(raw["max_us"]) / 1000,
        "error_sample": raw["bad_sample"] or None,
        "wrk_errors": {
            k: raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        },
    }


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


async def _run_python(request: Request, connections: int, seconds: float) -> dict[str, object]:
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    sent_total = [0]
    deadline = time.perf_counter() + seconds
    encoded_marker = request.marker.encode()

    async def worker(session: aiohttp.ClientSession, number: int) -> None:
        sent = 0
        while time.perf_counter() < deadline:
            sent += 1
            sent_total[0] += 1
            body = f"{request.prefix}{number}-{sent}{request.suffix}".encode()
            began = time.perf_counter()
            try:
                async with session.post(request.url, data=body, headers=request.headers) as resp:
                    payload = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{exc.__class__.__name__}: {exc}"[:200])
                continue
            if resp.status != 200 or encoded_marker not in payload:
                errors.append(f"{resp.status} {payload[:200]!r}")
                continue
            latencies.append(time.perf_counter() - began)

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=connections)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session, n + 1) for n in range(connections)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies) + len(errors),
        "sent": sent_total[0],
        "good": len(latencies),
        "errors": len(errors),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p90_ms": _percentile(latencies, 90) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=math.nan) * 1000,
        "error_sample": errors[0] if errors else None,
    }

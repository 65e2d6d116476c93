"""Load balancing within a tier position, measured through two gateway processes against the mock.

``python -m bench.balancing [--requests N] [--concurrency C] [--write]`` starts its own
embedded PostgreSQL + Redis, the mock upstream and two gateway processes (uvicorn)
sharing them, then sends requests alternately to both:

1. ``weighted``: three deployments weighted 5 / 3 / 2 share one position; the
   split of the answers (``X-Gateway-Model``) against the configured one;
2. ``least-busy``: two deployments weighted 3 / 1 whose upstream holds each
   request 0.2 s, C requests in flight at once: the split follows the capacity
   the weights describe, and the in-flight counts in Redis return to zero;
3. ``latency``: two deployments, one answering 0.15 s later: the share the
   faster one gets once both are measured.

``--docs`` puts the tables into ``docs/benchmarks.md`` (section ``load-balancing``), written
from the raw results in ``docs/results/balancing.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

import aiohttp

from bench import (
    docs,
    procs,
    report,  # first: the provenance is taken when the benchmark starts
    stack,
)

SECTION = "load-balancing"
WEIGHTS = {"lb-east": 5, "lb-west": 3, "lb-north": 2}
BUSY_WEIGHTS = {"lb-big": 3, "lb-small": 1}
LATENCY_REQUESTS = 200


def _fixtures(mock_url: str) -> str:
    from routing.models import Tier, TierModel
    from tests.factories import make_key, make_model, make_provider

    provider = make_provider(f"{mock_url}/v1", name="lb-mock")

    def tier(name: str, strategy: str, members: dict[str, int]) -> None:
        row = Tier.objects.create(name=name, balancing=strategy)
        for model, weight in members.items():
            TierModel.objects.create(
                tier=row, model=make_model(provider, name=model, upstream_model=f"up-{model}"), weight=weight
            )

    tier("lb_weighted", "weighted", WEIGHTS)
    tier("lb_busy", "least-busy", BUSY_WEIGHTS)
    tier("lb_latency", "latency", {"lb-slow": 1, "lb-fast": 1})
    return make_key()[1]


async def _run(urls: list[str], secret: str, tier: str, text: str, count: int, concurrency: int) -> Counter[str]:
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}
    served: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:

        async def one(index: int) -> None:
            body = {"model": tier, "max_tokens": 8, "messages": [{"role": "user", "content": f"{text} #{index}"}]}
            url = f"{urls[index % len(urls)]}/v1/chat/completions"
            async with gate, session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{tier}: HTTP {resp.status}")
                served[resp.headers["X-Gateway-Model"]] += 1

        await asyncio.gather(*(one(i) for i in range(count)))
    return served


def _split(served: Counter[str], weights: dict[str, int]) -> list[dict[str, object]]:
    total, weight_sum = sum(served.values()), sum(weights.values())
    return [
        {
            "deployment": name,
            "weight": weight,
            "configured_pct": round(100 * weight / weight_sum, 2),
            "answered": served[name],
            "measured_pct": round(100 * served[name] / total, 2),
        }
        for name, weight in weights.items()
    ]


def _worst(rows: list[dict[str, object]]) -> float:
    return max(abs(float(r["measured_pct"]) - float(r["configured_pct"])) for r in rows)  # type: ignore[arg-type]


def measure(requests: int, concurrency: int) -> dict[str, object]:
    """Run the three strategies through two gateway processes; the raw results."""
    from gateway_platform.redis_clients import sync_client
    from providers.load import busy_key

    with stack.backing_services() as backing:
        env = {**backing.env, "GATEWAY_CONFIG_POLL_SECONDS": "0.5"}
        with stack.mock_upstream(env, backing.logs) as (_, mock_url):
            secret = _fixtures(mock_url)
            with (
                stack.gateway("uvicorn", env, backing.logs) as (_, one),
                stack.gateway("uvicorn", env, backing.logs) as (_, two),
            ):
                urls = [one, two]
                started = time.perf_counter()
                weighted = asyncio.run(_run(urls, secret, "lb_weighted", "spread", requests, concurrency))
                seconds = time.perf_counter() - started
                busy_count = max(concurrency * 10, 160)
                busy = asyncio.run(_run(urls, secret, "lb_busy", "hold [[mock: delay=0.2]]", busy_count, concurrency))
                time.sleep(0.5)
                left = {name: int(sync_client().zcard(busy_key(name))) for name in BUSY_WEIGHTS}
                latency = asyncio.run(
                    _run(urls, secret, "lb_latency", "[[mock: model=up-lb-slow delay=0.15]]", LATENCY_REQUESTS, 4)
                )
    return {
        "requests": requests,
        "concurrency": concurrency,
        "weighted": {"rows": _split(weighted, WEIGHTS), "requests_per_second": round(requests / seconds, 1)},
        "least_busy": {"requests": busy_count, "rows": _split(busy, BUSY_WEIGHTS), "in_flight_after": left},
        "latency": {"requests": LATENCY_REQUESTS, "answered": dict(latency)},
    }


def render(results: dict[str, object]) -> list[str]:
    """The Markdown tables of ``results``."""
    weighted, busy, latency = results["weighted"], results["least_busy"], results["latency"]
    assert isinstance(weighted, dict) and isinstance(busy, dict) and isinstance(latency, dict)
    headers = ["Deployment", "Weight", "Configured %", "Answered", "Measured %"]
    keys = ["deployment", "weight", "configured_pct", "answered", "measured_pct"]
    return [
        f"### weighted: {results['requests']} requests, {results['concurrency']} at a time, two gateway processes",
        "",
        report.table(headers, [[row[k] for k in keys] for row in weighted["rows"]]),
        "",
        f"Largest deviation from the configured split: **{_worst(weighted['rows']):.2f} percentage points** "
        f"({weighted['requests_per_second']:.0f} requests/s through both processes on this machine).",
        "",
        f"### least-busy: {busy['requests']} requests held 0.2 s upstream, {results['concurrency']} in flight",
        "",
        report.table(headers, [[row[k] for k in keys] for row in busy["rows"]]),
        "",
        f"In flight in Redis after the run: {busy['in_flight_after']} (every request released its entry). "
        "The split follows the capacity the weights describe (requests in flight per unit of weight).",
        "",
        f"### latency: {latency['requests']} requests, one deployment 0.15 s slower",
        "",
        report.table(["Deployment", "Answered"], [[n, latency["answered"].get(n, 0)] for n in ("lb-fast", "lb-slow")]),
        "",
        "The slower one answers only the requests that measured it (each process tries an unmeasured "
        "deployment first, and requests routed while both were still unmeasured).",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--docs", action="store_true", help=f"rewrite the {SECTION} section of docs/benchmarks.md")
    args = parser.parse_args()
    results = measure(args.requests, args.concurrency)
    lines = render(results)
    sys.stdout.write("\n".join(lines) + "\n")
    path = report.write("balancing", results, "\n".join(lines))
    if args.docs:
        command = " ".join(["python -m bench.balancing", *sys.argv[1:]])
        docs.replace_section(
            procs.BASE_DIR / "docs" / "benchmarks.md",
            SECTION,
            [
                f"Generated by `{command}`; raw results: `{path.relative_to(procs.BASE_DIR)}`.",
                "",
                *lines,
                "",
                report.provenance_line(),
            ],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

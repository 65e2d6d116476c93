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

``--write`` puts the tables into ``docs/benchmarks.md`` (section ``load-balancing``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench import docs, procs, stack

WEIGHTS = {"lb-east": 5, "lb-west": 3, "lb-north": 2}


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
    tier("lb_busy", "least-busy", {"lb-big": 3, "lb-small": 1})
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


def _split_rows(served: Counter[str], weights: dict[str, int]) -> tuple[list[str], float]:
    total, weight_sum = sum(served.values()), sum(weights.values())
    rows, worst = [], 0.0
    for name, weight in weights.items():
        expected, measured = 100 * weight / weight_sum, 100 * served[name] / total
        worst = max(worst, abs(measured - expected))
        rows.append(f"| {name} | {weight} | {expected:.1f} % | {served[name]} | {measured:.1f} % |")
    return rows, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    lines: list[str] = []
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
                weighted = asyncio.run(_run(urls, secret, "lb_weighted", "spread", args.requests, args.concurrency))
                seconds = time.perf_counter() - started
                rows, worst = _split_rows(weighted, WEIGHTS)
                lines += [
                    f"### weighted: {args.requests} requests, {args.concurrency} at a time, two gateway processes",
                    "",
                    "| Deployment | Weight | Configured | Answered | Measured |",
                    "|---|---|---|---|---|",
                    *rows,
                    "",
                    f"Largest deviation from the configured split: **{worst:.2f} percentage points** "
                    f"({args.requests / seconds:.0f} requests/s through the gateway on this machine).",
                    "",
                ]
                busy_count = max(args.concurrency * 10, 160)
                busy = asyncio.run(
                    _run(urls, secret, "lb_busy", "hold [[mock: delay=0.2]]", busy_count, args.concurrency)
                )
                rows, worst = _split_rows(busy, {"lb-big": 3, "lb-small": 1})
                from gateway_platform.redis_clients import sync_client

                time.sleep(0.5)
                left = {name: sync_client().zcard(f"lb:busy:{name}") for name in ("lb-big", "lb-small")}
                lines += [
                    f"### least-busy: {busy_count} requests held 0.2 s upstream, {args.concurrency} in flight",
                    "",
                    "| Deployment | Weight | Capacity share | Answered | Measured |",
                    "|---|---|---|---|---|",
                    *rows,
                    "",
                    f"In flight in Redis after the run: {left} (every request released its entry).",
                    "",
                ]
                latency_count = 200
                latency = asyncio.run(
                    _run(urls, secret, "lb_latency", "[[mock: model=up-lb-slow delay=0.15]]", latency_count, 4)
                )
                lines += [
                    f"### latency: {latency_count} requests, one deployment 0.15 s slower",
                    "",
                    "| Deployment | Answered |",
                    "|---|---|",
                    *(f"| {name} | {latency[name]} |" for name in ("lb-fast", "lb-slow")),
                    "",
                    "The slower one answers the requests that measured it (one per gateway process while it had "
                    "no sample, and the ones routed while both were unmeasured or in flight).",
                ]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.write:
        docs.replace_section(Path(procs.BASE_DIR) / "docs" / "benchmarks.md", "load-balancing", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

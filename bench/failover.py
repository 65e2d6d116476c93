"""Failover latency and the cost of translating wire formats.

``python -m bench.failover [--requests N]`` starts its own embedded PostgreSQL +
Redis, the mock upstream and the gateway (uvicorn), then measures, one request
at a time:

1. failover latency: the time until a client gets its answer when the tier's
   primary fails (HTTP 500, connection refused, read timeout) and the fallback
   answers, against the same tier with a healthy primary (retries off, circuit
   never opening, so every request pays the failover);
2. translation overhead: latency and gateway CPU per request for an
   OpenAI-compatible deployment (pass-through) against Anthropic and Ollama
   deployments (full translation), non-streaming and streaming.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import httpx2
import psutil

from bench import docs, procs, report, stack

KEY_ENV = "BENCH_PROVIDER_KEY"


def _fixtures(mock_url: str) -> str:
    from tests.factories import make_key, make_model, make_provider, make_tier

    openai = make_provider(f"{mock_url}/v1", name="fo-openai", read_timeout=0.5)
    primary = make_model(openai, name="fo-primary", upstream_model="primary-1")
    backup = make_model(openai, name="fo-backup", upstream_model="backup-1")
    make_tier("fo_tier", [primary, backup])
    dead = make_model(make_provider(f"http://127.0.0.1:{procs.free_port()}/v1", name="fo-dead"), name="fo-dead")
    make_tier("fo_dead_tier", [dead, backup])
    make_model(make_provider(mock_url, kind="anthropic", name="fo-anthropic", api_key_env=KEY_ENV), name="fo-claude")
    make_model(make_provider(mock_url, kind="ollama", name="fo-ollama"), name="fo-llama")
    return make_key()[1]


def _timed(client: httpx2.Client, body: dict[str, object]) -> float:
    started = time.perf_counter()
    if body.get("stream"):
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            for _ in response.iter_bytes():
                pass
    else:
        response = client.post("/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{body['model']}: HTTP {response.status_code}")
    return elapsed * 1000


def _series(client: httpx2.Client, server: psutil.Process, body: dict[str, object], n: int) -> dict[str, float]:
    for _ in range(5):
        _timed(client, body)  # warm the pools
    cpu_before = sum(server.cpu_times()[:2])
    samples = [_timed(client, body) for _ in range(n)]
    cpu_ms = (sum(server.cpu_times()[:2]) - cpu_before) * 1000 / n
    samples.sort()
    return {"p50": statistics.median(samples), "p99": samples[min(n - 1, int(n * 0.99))], "cpu": cpu_ms}


def _ask(model: str, text: str, *, stream: bool = False) -> dict[str, object]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


SECTION = "failover"  # its section of docs/benchmarks.md (bench.docs.replace_section)
FAILOVER_CASES = ("healthy primary", "primary HTTP 500", "primary refuses connections", "primary read timeout (0.5 s)")
WIRE_FORMATS = (("OpenAI pass-through", "fo-backup"), ("Anthropic", "fo-claude"), ("Ollama", "fo-llama"))


def measure(n: int) -> dict[str, Any]:
    """Failover latency per case and translation cost per wire format and mode, one request at a time."""
    results: dict[str, Any] = {"requests": n, "failover": {}, "translation": {}}
    with stack.backing_services() as backing:
        env = {
            **backing.env,
            KEY_ENV: "bench",
            "GATEWAY_RETRIES_PER_DEPLOYMENT": "0",
            "GATEWAY_CIRCUIT_FAILURES": "1000000000",
        }
        with stack.mock_upstream(env, backing.logs) as (_, mock_url):
            secret = _fixtures(mock_url)
            with stack.gateway("uvicorn", env, backing.logs) as (pid, url):
                server = psutil.Process(pid)
                # no-store: repeats of one prompt must reach the upstream, not the response cache.
                headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}
                with httpx2.Client(base_url=url, headers=headers, timeout=30) as client:
                    bodies = dict(
                        zip(
                            FAILOVER_CASES,
                            (
                                _ask("fo_tier", "hi"),
                                _ask("fo_tier", "hi [[mock: status=500 model=primary-1]]"),
                                _ask("fo_dead_tier", "hi"),
                                _ask("fo_tier", "hi [[mock: delay=2 model=primary-1]]"),
                            ),
                            strict=True,
                        )
                    )
                    for name, body in bodies.items():
                        count = max(10, n // 10) if "timeout" in name else n
                        results["failover"][name] = {"requests": count, **_series(client, server, body, count)}
                    for label, model in WIRE_FORMATS:
                        for stream in (False, True):
                            body = _ask(model, "translate me [[mock: words=40]]", stream=stream)
                            mode = "stream" if stream else "plain"
                            results["translation"][f"{label}/{mode}"] = _series(client, server, body, n)
    return results


def render(results: dict[str, Any]) -> list[str]:
    """The two tables, from the measured results."""
    lines = [
        "### Failover latency (uvicorn, one request at a time, retries off)",
        "",
        "| Case | requests | p50 ms | p99 ms | Added to healthy p50 ms |",
        "|---|---|---|---|---|",
    ]
    base = results["failover"][FAILOVER_CASES[0]]["p50"]
    for name, r in results["failover"].items():
        lines.append(f"| {name} | {r['requests']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p50'] - base:+.2f} |")
    lines += [
        "",
        f"### Translation overhead (uvicorn, one request at a time, {results['requests']} requests per row)",
        "",
        "| Wire format | Mode | p50 ms | p99 ms | Gateway CPU ms/req |",
        "|---|---|---|---|---|",
    ]
    for key, r in results["translation"].items():
        label, mode = key.split("/")
        lines.append(f"| {label} | {mode} | {r['p50']:.2f} | {r['p99']:.2f} | {r['cpu']:.3f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--docs", action="store_true", help=f"rewrite the {SECTION} section of docs/benchmarks.md")
    args = parser.parse_args()
    results = measure(args.requests)
    lines = render(results)
    sys.stdout.write("\n".join(lines) + "\n")
    path = report.write("failover", results, "\n".join(lines))
    if args.docs:
        command = " ".join(["python -m bench.failover", *sys.argv[1:]])
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

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

import httpx2
import psutil

from bench import procs, stack

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    n = parser.parse_args().requests
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
                    failover = {
                        "healthy primary": _ask("fo_tier", "hi"),
                        "primary HTTP 500": _ask("fo_tier", "hi [[mock: status=500 model=primary-1]]"),
                        "primary refuses connections": _ask("fo_dead_tier", "hi"),
                        "primary read timeout (0.5 s)": _ask("fo_tier", "hi [[mock: delay=2 model=primary-1]]"),
                    }
                    sys.stdout.write("## Failover latency (uvicorn, one request at a time, retries off)\n\n")
                    sys.stdout.write("| Case | p50 ms | p99 ms | Added to healthy p50 ms |\n|---|---|---|---|\n")
                    base = None
                    for name, body in failover.items():
                        count = max(10, n // 10) if "timeout" in name else n
                        result = _series(client, server, body, count)
                        base = base if base is not None else result["p50"]
                        sys.stdout.write(
                            f"| {name} | {result['p50']:.2f} | {result['p99']:.2f} | {result['p50'] - base:+.2f} |\n"
                        )
                    sys.stdout.write("\n## Translation overhead (uvicorn, one request at a time)\n\n")
                    sys.stdout.write(
                        "| Wire format | Mode | p50 ms | p99 ms | Gateway CPU ms/req |\n|---|---|---|---|---|\n"
                    )
                    for label, model in (
                        ("OpenAI pass-through", "fo-backup"),
                        ("Anthropic", "fo-claude"),
                        ("Ollama", "fo-llama"),
                    ):
                        for stream in (False, True):
                            result = _series(
                                client, server, _ask(model, "translate me [[mock: words=40]]", stream=stream), n
                            )
                            mode = "stream" if stream else "plain"
                            p50, p99, cpu = result["p50"], result["p99"], result["cpu"]
                            row = f"| {label} | {mode} | {p50:.2f} | {p99:.2f} | {cpu:.3f} |"
                            sys.stdout.write(row + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

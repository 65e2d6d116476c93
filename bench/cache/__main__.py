"""Run the cache benchmarks: ``python -m bench.cache [precision] [accuracy] [replay] [latency] [--sizes N,...]``.

Uses its own embedded PostgreSQL and Redis under ``var/bench-cache`` unless
``DATABASE_URL`` / ``REDIS_URL`` are set. Prints Markdown for
``docs/benchmarks-cache.md`` and appends raw results to
``var/bench-cache/results.jsonl``; the ``precision`` part also rewrites its own
section of ``docs/benchmarks-cache.md`` (between its markers) from the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache")
    parser.add_argument("parts", nargs="*", default=["precision", "accuracy", "replay", "latency"])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--namespaces", type=int, default=10, help="namespaces per tenant")
    args = parser.parse_args(argv)
    os.environ.setdefault("GATEWAY_VAR_DIR", str(BASE_DIR / "var" / "bench-cache"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    from caching.embedders.local import shared

    results = Path(os.environ["GATEWAY_VAR_DIR"]) / "results.jsonl"

    def save(part: str, value: object) -> None:
        record = {"part": part, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "result": value}
        with results.open("a") as fh:
            fh.write(json.dumps(record, default=lambda o: dataclasses.asdict(o)) + "\n")

    model = shared()
    model.load()
    if "precision" in args.parts:
        from bench.cache import precision
        from bench.docs import replace_section

        result = precision.evaluate(model)
        save("precision", result)
        lines = precision.report(result)
        replace_section(BASE_DIR / "docs" / "benchmarks-cache.md", "precision", lines)
        print("\n".join(["## (d) Precision by construction", "", *lines, ""]), flush=True)
    if "accuracy" in args.parts:
        from bench.cache import accuracy

        result = accuracy.evaluate(model)
        save("accuracy", result)
        print("\n".join(["## (a) Labelled pairs", "", *accuracy.report(result), ""]), flush=True)
    if "replay" in args.parts:
        from bench.cache import agent_replay

        result = agent_replay.run(model)
        save("replay", result)
        print("\n".join(["## (b) Agent session replay", "", *agent_replay.report(result), ""]), flush=True)
    if "latency" in args.parts:
        from bench.cache import latency

        call_command("migrate", verbosity=0)
        p50, p99 = latency.embedding_latency()
        save("embedding", {"p50_ms": p50, "p99_ms": p99})
        print(
            f"## (c) Lookup latency ({args.namespaces} namespaces per tenant)\n\n"
            f"Embedding one prompt (local model, one thread): p50 {p50:.1f} ms, p99 {p99:.1f} ms\n"
        )
        print(
            "| entries | load s | index build s | as planned p50 / p99 ms | HNSW p50 / p99 ms "
            "| exact p50 / p99 ms | HNSW top-1 = exact | plans using HNSW |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
        tenants = latency.tenant_ids()
        for size in (int(s) for s in args.sizes.split(",")):
            measured = latency.measure(
                size, tenants, args.namespaces, log=lambda line: print(line, file=sys.stderr, flush=True)
            )
            save("latency", measured)
            print(
                f"| {size:,} | {measured.load_seconds:.0f} | {measured.index_seconds:.0f} | "
                f"{measured.planned_p50_ms:.2f} / {measured.planned_p99_ms:.2f} | "
                f"{measured.hnsw_p50_ms:.2f} / {measured.hnsw_p99_ms:.2f} | "
                f"{measured.exact_p50_ms:.2f} / {measured.exact_p99_ms:.2f} | {measured.recall_at_1:.0%} | "
                f"{measured.planned_uses_hnsw:.0%} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

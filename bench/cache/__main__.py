"""Run the cache benchmarks: ``python -m bench.cache [precision] [accuracy] [replay] [latency] [--sizes N,...]``.

Uses its own embedded PostgreSQL and Redis under ``var/bench-cache`` unless
``DATABASE_URL`` / ``REDIS_URL`` are set. Prints Markdown for
``docs/benchmarks-cache.md`` and appends raw results to
``var/bench-cache/results.jsonl``; the ``precision``, ``accuracy`` and ``replay``
parts also rewrite their own sections of ``docs/benchmarks-cache.md`` (between
their markers) from the run, and the targets table when all three ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

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

    from bench.docs import replace_section

    docs = BASE_DIR / "docs" / "benchmarks-cache.md"
    model = shared()
    model.load()
    ran: dict[str, Any] = {}
    if "precision" in args.parts:
        from bench.cache import precision

        ran["precision"] = result = precision.evaluate(model)
        save("precision", result)
        lines = precision.report(result)
        replace_section(docs, "precision", lines)
        print("\n".join(["## (d) Precision by construction", "", *lines, ""]), flush=True)
    if "accuracy" in args.parts:
        from bench.cache import accuracy

        ran["accuracy"] = result = accuracy.evaluate(model)
        save("accuracy", result)
        lines = accuracy.report(result)
        replace_section(docs, "accuracy", lines)
        replace_section(docs, "hard", accuracy.hard_report(result))
        print("\n".join(["## (a) Labelled pairs", "", *lines, "", *accuracy.hard_report(result), ""]), flush=True)
    if "replay" in args.parts:
        from bench.cache import agent_replay

        ran["replay"] = result = agent_replay.run(model)
        save("replay", result)
        lines = agent_replay.report(result)
        replace_section(docs, "replay", lines)
        print("\n".join(["## (b) Agent session replay", "", *lines, ""]), flush=True)
    if {"precision", "accuracy", "replay"} <= ran.keys():
        from bench import report
        from bench.cache import summary

        lines = summary.report(ran["precision"], ran["accuracy"], ran["replay"])
        raw = json.loads(json.dumps(ran, default=dataclasses.asdict))
        path = report.write("cache", raw, "\n".join(lines))
        lines += ["", f"{report.provenance_line()} Raw results: `{path.relative_to(BASE_DIR)}`."]
        replace_section(docs, "summary", lines)
        print("\n".join(["## Targets", "", *lines, ""]), flush=True)
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

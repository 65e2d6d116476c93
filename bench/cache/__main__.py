"""Run the cache benchmarks: ``python -m bench.cache [precision] [accuracy] [replay] [latency] [--sizes N,...]``.

Uses its own embedded PostgreSQL and Redis under ``var/bench-cache`` unless
``DATABASE_URL`` / ``REDIS_URL`` are set. Every part rewrites its own sections of
``docs/benchmarks-cache.md`` (between their markers) from the run and appends raw
results to ``var/bench-cache/results.jsonl``; the targets table is rewritten when
``precision``, ``accuracy`` and ``replay`` all ran (raw results: ``docs/results/cache.json``),
section (c), its target row and the embedding-model check by ``latency``
(``docs/results/cache-latency.json``, at the ``--sizes`` the run measured).
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
    sections: list[tuple[str, list[str]]] = []  # written with the raw results' provenance once these parts ran
    if "precision" in args.parts:
        from bench.cache import precision

        ran["precision"] = result = precision.evaluate(model)
        save("precision", result)
        lines = precision.report(result)
        sections.append(("precision", lines))
        print("\n".join(["## (d) Precision by construction", "", *lines, ""]), flush=True)
    if "accuracy" in args.parts:
        from bench.cache import accuracy

        ran["accuracy"] = result = accuracy.evaluate(model)
        save("accuracy", result)
        lines = accuracy.report(result)
        sections += [("accuracy", lines), ("hard", accuracy.hard_report(result))]
        print("\n".join(["## (a) Labelled pairs", "", *lines, "", *accuracy.hard_report(result), ""]), flush=True)
    if "replay" in args.parts:
        from bench.cache import agent_replay

        ran["replay"] = result = agent_replay.run(model)
        save("replay", result)
        lines = agent_replay.report(result)
        sections.append(("replay", lines))
        print("\n".join(["## (b) Agent session replay", "", *lines, ""]), flush=True)
    if ran:
        from bench import report
        from bench.cache import summary

        if {"precision", "accuracy", "replay"} <= ran.keys():
            sections.append(("summary", summary.report(ran["precision"], ran["accuracy"], ran["replay"])))
        # A run of only some parts replaces cache.json too, so the sections it did not rewrite no longer
        # match their raw results (tests/docs/test_pages.py): run the three together for the page.
        raw = json.loads(json.dumps(ran, default=dataclasses.asdict))
        path = report.write("cache", raw, "\n\n".join("\n".join(lines) for _, lines in sections))
        stamp = f"{report.provenance_line()} Raw results: `{path.relative_to(BASE_DIR)}`."
        for name, lines in sections:
            replace_section(docs, name, [*lines, "", stamp])
        print("\n".join(["## Targets", "", *sections[-1][1], ""]), flush=True)
    if "latency" in args.parts:
        from bench import report
        from bench.cache import latency, model_check

        call_command("migrate", verbosity=0)
        check = model_check.evaluate(model)
        embedding = latency.embedding_latency()
        save("embedding", embedding)
        tenants = latency.tenant_ids()
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            started = time.monotonic()
            measured = latency.measure(
                size, tenants, args.namespaces, log=lambda line: print(line, file=sys.stderr, flush=True)
            )
            save("latency", measured)
            rows.append({**dataclasses.asdict(measured), "wall_seconds": round(time.monotonic() - started, 1)})
            print("\n".join(latency.table(rows)[-1:]), flush=True)
        raw = {
            "sizes": rows,
            "tenants": latency.TENANTS,
            "server": latency.server_settings(),
            "embedding": embedding,
            "model_check": check,
        }
        lines = latency.report(raw)
        path = report.write("cache-latency", raw, "\n".join(lines))
        stamp = f"{report.provenance_line()} Raw results: `{path.relative_to(BASE_DIR)}`."
        replace_section(docs, "latency", [*lines, "", stamp])
        target = ["| target | result |", "| --- | --- |", latency.target_row(rows)]
        replace_section(docs, "latency-target", [*target, "", stamp])
        replace_section(docs, "model-check", [*model_check.report(check), "", stamp])
        print("\n".join(["## (c) Lookup latency", "", *lines, "", *model_check.report(check)]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

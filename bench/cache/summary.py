"""The targets table of ``docs/benchmarks-cache.md`` (issue 14), from one run of its precision, accuracy and replay."""

from __future__ import annotations

import os
from typing import Any

from bench.cache.precision import DEFAULT_THRESHOLD, Outcome


def report(precision: dict[str, Any], accuracy: dict[str, Any], replay: dict[str, Any]) -> list[str]:
    """Markdown lines: each target of the semantic layer and what this run measured."""
    d: Outcome = precision["default"]
    short, long = precision["latency"]["short"], precision["latency"]["long"]
    older = next(row for row in accuracy["rows"] if row.threshold == DEFAULT_THRESHOLD)
    load = os.getloadavg()[0]
    saved_share = replay["usd_saved"] / (replay["usd_saved"] + replay["usd_spent"])
    return [
        f"Threshold {DEFAULT_THRESHOLD} (the default), the local embedder, the guard with its wording check.",
        "",
        "| target | result |",
        "| --- | --- |",
        f"| wrong hits ≤ 0.5 %, 95 % upper bound stated (labelled set of (d)) | **{d.wrong} of {d.changes} "
        f"parameter changes served ({d.wrong / d.changes:.2%}); one-sided 95 % upper bound {d.wrong_upper:.2%}**; "
        f"{d.plain_wrong} of the {d.plain_changes} single plain-word substitutions. Older set of (a): "
        f"{older.wrong_hits} of {accuracy['near_duplicates']} near-duplicates served |",
        f"| paraphrase recall (reported) | **{d.recall:.1%}** on the labelled set of (d); **{older.hit_rate:.1%}** on "
        f"the older, independently written set of (a) ({accuracy['heldout_recall']:.1%} on its half whose "
        "failures were never looked at when the word lists were extended) |",
        f"| verification adds ≤ 2 ms p99 to a lookup | CPU time per lookup, p99: **{short['lookup_cpu']['p99_ms']:.2f} "
        f"ms** for short prompts (~{short['chars']:.0f} characters), **{long['lookup_cpu']['p99_ms']:.2f} ms** for "
        f"~4 KB prompts. Wall clock p99 {short['lookup']['p99_ms']:.2f} / {long['lookup']['p99_ms']:.2f} ms (p50 "
        f"{short['lookup']['p50_ms']:.2f} / {long['lookup']['p50_ms']:.2f} ms) on the shared machine, load average "
        f"{load:.1f} on 2 cores when this table was written: the tail is time spent waiting for a core; see (d) |",
        f"| hit rate ≥ 60 % on the agent replay | **{replay['hit_rate']:.1%}**, {replay['wrong_hits']} wrong hits; "
        f"{saved_share:.1%} of the upstream cost saved; see (b) |",
    ]

"""``python -m bench.routing``: replay the labelled workload through the `auto` router and report.

Prints Markdown (tier distribution, accuracy, routed below / above label, cost
against all-premium, scorer latency) for the dev split, the held-out split and
both, writes ``bench/results/routing.{json,md}`` and, with ``--docs``,
``docs/benchmarks-routing.md``. ``--misses dev`` lists the dev requests routed
away from their label (what tuning may look at; never the held-out ones).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import report
from bench.routing import replay, workload
from bench.routing.render import AGENT_MIX, render
from routing.scoring import STRATEGIES

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "benchmarks-routing.md"
SPLITS = ("dev", "holdout", "all")
OVERHEADS = (0, replay.IDE_CONTEXT_TOKENS, 8000)


def _subset(results: list[replay.Routed], split: str) -> list[replay.Routed]:
    return [r for r in results if split == "all" or r.split == split]


def run(args: argparse.Namespace) -> int:
    if args.regenerate:
        print(f"wrote {workload.write()} records to {workload.WORKLOAD_PATH}", file=sys.stderr)
    records = workload.load()
    router = replay.default_router()
    results = replay.replay(router, records)
    summaries = {split: replay.summarize(router, _subset(results, split)) for split in SPLITS}
    long = replay.long_conversations(records)
    strategies = {}
    for strategy in STRATEGIES[:2]:
        s = replay.summarize(router, replay.replay(router, records, strategy))
        strategies[strategy] = {"accuracy": s.accuracy, "below": s.below, "reduction": s.reduction}
    overheads = []
    for overhead in OVERHEADS:
        s = replay.summarize(router, results, overhead=overhead)
        overheads.append({"overhead": overhead, "reduction": s.reduction, "oracle": s.oracle_reduction})
    reduction, oracle = replay.reweighted(router, results, AGENT_MIX)
    data: dict[str, Any] = {
        "splits": {split: {**asdict(s), "reduction": s.reduction} for split, s in summaries.items()},
        "labels": replay.by_label(router, results),
        "strategies": strategies,
        "overheads": overheads,
        "agent_mix": {"shares": AGENT_MIX, "reduction": reduction, "oracle": oracle},
        "latency": {
            "workload": replay.time_scorer(router, [r["body"] for r in records], rounds=args.rounds),
            "long": replay.time_scorer(router, long, rounds=args.rounds * 5),
            "conversation_tokens": round(statistics.fmean(replay.estimate_prompt_tokens(body) for body in long)),
        },
    }
    markdown = render(data, summaries, results, router)
    report.write("routing", data, markdown)
    if args.docs:
        DOCS_PATH.write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    if args.misses:
        print(f"\nMisrouted ({args.misses}):")
        for r in _subset(results, args.misses):
            if r.tier != r.label:
                print(f"  {r.id:<12} {r.shape:<9} label={r.label:<17} got={r.tier:<17} {r.reason}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regenerate", action="store_true", help="rewrite workload.jsonl from the templates first")
    parser.add_argument("--docs", action="store_true", help="also write docs/benchmarks-routing.md")
    parser.add_argument("--misses", choices=("dev", "holdout", "all"), help="list misrouted requests of a split")
    parser.add_argument("--rounds", type=int, default=20, help="timing passes over the workload")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

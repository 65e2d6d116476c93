"""The Markdown report of the routing benchmark (``docs/benchmarks-routing.md``)."""

from __future__ import annotations

import os
import platform
from typing import Any

from bench import report
from bench.routing import replay

AGENT_MIX = {"simple_ops": 0.70, "code_gen": 0.22, "complex_reasoning": 0.08}
TARGET_BELOW, TARGET_CUT, TARGET_P99_US = 0.05, 0.60, 1000.0

INTRO = """\
# Routing benchmark (`python -m bench.routing`)

A labelled workload of realistic agent and IDE requests (`bench/routing/workload.jsonl`, built by
`bench/routing/workload.py` from the templates in `bench/routing/templates.py`) is replayed through the
`auto` router of the bundled defaults — the same scorer and resolver the gateway runs, built in memory
from `routing/defaults/gateway-config.yaml` (bands 0.35 / 0.65 / 1.0, seeded prices), no HTTP.

- **Requests**: file listing, grep, reading and quick questions, small edits, git and shell, parsing
  output (labelled `simple_ops`); scripts, features and tests, refactors, ordinary debugging (`code_gen`);
  architecture, migration planning, distributed-systems debugging, concurrency, proofs and threat models
  (`complex_reasoning`). Each template is instantiated in five shapes — a bare question, an IDE request
  with a long system prompt, an agent start with tool definitions, a multi-turn conversation, an agent
  loop in progress ending in a tool result — plus short follow-ups ("yes, go ahead") that keep the task's
  label. The label is the *cheapest tier that should serve the request*.
- **Split**: templates, not instances, are split (one in three held out), so the held-out numbers measure
  unseen phrasings. Tuning looked only at the dev misses (`--misses dev`).
- **Costs**: the seeded prices; prompt tokens are the request's own (the gateway's 4-characters-per-token
  estimate, tools included) plus {overhead:,} tokens of assumed IDE context (system prompt, rules, open
  files — real Cursor / Claude Code requests carry more); completion tokens are assumed per request kind
  (150 for a listing to 2,000 for an architecture answer, `templates.COMPLETION_TOKENS`). *Premium* sends
  everything to the baseline tier (`complex_reasoning`, gpt-5.5); *oracle* routes every request exactly to
  its label, the best any router can do on this mix.
"""

CAVEATS = """\
## Reading the numbers

- **The scorer is conservative by design.** A request with no evidence scores low in the *middle* band;
  only positive evidence of light work (list, grep, show, rename, typo, commit message, ...) sends it to
  the cheap tier. Mistakes therefore mostly cost money (routed above the label), rarely quality.
- **The cost target is out of reach of routing alone with the seeded prices.** `code_gen` is {code_model}
  (${code_in:g} / ${code_out:g} per million) against {premium_model} (${premium_in:g} / ${premium_out:g}):
  code answers are output-heavy, so perfectly routed code work saves only {code_oracle} (this run's oracle
  cut for the `code_gen` label). Even the oracle stays far below 60 % on this
  mix; the cut grows with the IDE context per request and with the share of light agent steps (tables
  above). The levers beyond scoring are the cascade (try the cheap tier first, escalate on failed checks),
  token reduction, the semantic cache and `local_first` for the cheap band.
- **Held-out is still optimistic.** The same person wrote the vocabulary and the workload; held-out
  templates were not tuned on, but their phrasings were known. Real traffic will differ: calibrate the
  bands and keywords with the cascade outcomes (`RoutingOutcome`, `export_trajectories`).
- **Latency**: the scorer is pure Python with precompiled regular expressions and reads only the latest
  task closely (the first 4,000 and last 2,000 characters), so its cost barely grows with the
  conversation. *p99 of best-of-runs* is each request's fastest run — its own cost without preemption by
  other processes; raw p99 includes whatever else the machine was doing (load average {load}).
"""


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _main_table(summaries: dict[str, replay.Summary]) -> str:
    rows = [
        [
            split,
            s.requests,
            pct(s.accuracy),
            pct(s.below),
            pct(s.above),
            pct(s.reduction),
            pct(s.oracle_reduction),
            f"${s.cost_routed:.2f} / ${s.cost_premium:.2f}",
        ]
        for split, s in summaries.items()
    ]
    headers = [
        "split",
        "requests",
        "accuracy",
        "below label",
        "above label",
        "cost cut",
        "oracle cut",
        "routed/premium",
    ]
    return report.table(headers, rows)


def _label_table(rows: list[dict[str, Any]]) -> str:
    return report.table(
        ["label", "requests", "share of premium bill", "cost cut (routed)", "cost cut (oracle)"],
        [[r["label"], r["requests"], pct(r["premium_share"]), pct(r["reduction"]), pct(r["oracle"])] for r in rows],
    )


def _distribution_table(summary: replay.Summary) -> str:
    rows = [
        [tier, pct(summary.label_distribution[tier]), pct(summary.distribution[tier])]
        + [summary.confusion[tier][routed] for routed in summary.confusion]
        for tier in summary.confusion
    ]
    return report.table(["label", "labelled", "routed", *(f"→ {t}" for t in summary.confusion)], rows)


def _shape_table(results: list[replay.Routed], order: dict[str, int]) -> str:
    rows = []
    for shape in sorted({r.shape for r in results}):
        subset = [r for r in results if r.shape == shape]
        accuracy = sum(r.tier == r.label for r in subset) / len(subset)
        below = sum(order[r.tier] < order[r.label] for r in subset) / len(subset)
        rows.append([shape, len(subset), pct(accuracy), pct(below)])
    return report.table(["shape", "requests", "accuracy", "below label"], rows)


def _latency_table(latency: dict[str, Any]) -> str:
    rows = [
        [
            label,
            f"{latency[key]['p50_us']:.0f} µs",
            f"{latency[key]['p99_us']:.0f} µs",
            f"{latency[key]['best_p99_us']:.0f} µs",
            latency[key]["samples"],
        ]
        for key, label in (
            ("workload", "workload requests"),
            ("long", f"50-message agent conversations (mean {latency['conversation_tokens']:,} tokens)"),
        )
    ]
    runtime = f"{platform.python_implementation()} {platform.python_version()}"
    headers = [f"scorer latency ({runtime}, GC off)", "p50", "p99", "p99 of best-of-runs", "calls"]
    return report.table(headers, rows)


def _targets(data: dict[str, Any], summaries: dict[str, replay.Summary]) -> list[str]:
    every, held = summaries["all"], summaries["holdout"]
    long = data["latency"]["long"]
    return [
        "## Targets",
        "",
        f"- ≤ 5 % routed below label: {pct(every.below)} of all requests, {pct(held.below)} held out — "
        f"{_verdict(every.below <= TARGET_BELOW)} overall, {_verdict(held.below <= TARGET_BELOW)} on held-out.",
        f"- ≥ 60 % cost cut against all-premium: {pct(every.reduction)} (oracle ceiling "
        f"{pct(every.oracle_reduction)}) — {_verdict(every.reduction >= TARGET_CUT)}.",
        f"- scorer p99 < 1 ms on a 50-message conversation: {long['best_p99_us']:.0f} µs per request "
        f"(raw p99 {long['p99_us']:.0f} µs) — {_verdict(long['best_p99_us'] < TARGET_P99_US)}.",
    ]


def _price_facts(data: dict[str, Any], router: replay.Router) -> dict[str, Any]:
    """The prices and the code_gen oracle cut the caveats quote, read from this run, not written by hand."""
    code = router.snapshot.tiers["code_gen"].deployments[0]
    premium = router.snapshot.tiers[router.baseline].deployments[0]
    oracle = next((r["oracle"] for r in data["labels"] if r["label"] == "code_gen"), float("nan"))
    return {
        "code_model": code.name,
        "code_in": float(code.input_cost_per_million),
        "code_out": float(code.output_cost_per_million),
        "premium_model": premium.name,
        "premium_in": float(premium.input_cost_per_million),
        "premium_out": float(premium.output_cost_per_million),
        "code_oracle": pct(oracle),
    }


def render(
    data: dict[str, Any], summaries: dict[str, replay.Summary], results: list[replay.Routed], router: replay.Router
) -> str:
    """The Markdown report."""
    strategies, overheads, mix = data["strategies"], data["overheads"], data["agent_mix"]
    mix_label = ", ".join(f"{pct(share)} {label}" for label, share in AGENT_MIX.items())
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        INTRO.format(overhead=replay.IDE_CONTEXT_TOKENS),
        _main_table(summaries),
        "",
        *_targets(data, summaries),
        "",
        "## Details",
        "",
        "Where the bill is (all requests): each label's share of the all-premium cost and how much routing cuts it:",
        "",
        _label_table(data["labels"]),
        "",
        "Tier distribution and confusion (all requests; rows are labels, columns where they were routed):",
        "",
        _distribution_table(summaries["all"]),
        "",
        "By request shape (all requests):",
        "",
        _shape_table(results, router.order),
        "",
        "Strategy (all requests): "
        + "; ".join(
            f"`{name}` accuracy {pct(s['accuracy'])}, below {pct(s['below'])}, cost cut {pct(s['reduction'])}"
            for name, s in strategies.items()
        )
        + ". (`quality_first` only moves scores within 0.05 of a band's upper edge; keyword matches land "
        "mid-band, so it rarely changes a decision.)",
        "",
        "Cost cut by the assumed IDE context per request (all requests): "
        + "; ".join(f"{r['overhead']:,} tokens → {pct(r['reduction'])} (oracle {pct(r['oracle'])})" for r in overheads)
        + ".",
        "",
        f"The same requests and decisions in an agent-heavy mix ({mix_label}, reweighted by label): cost cut "
        f"{pct(mix['reduction'])} (oracle {pct(mix['oracle'])}).",
        "",
        _latency_table(data["latency"]),
        "",
        CAVEATS.format(load=load, **_price_facts(data, router)),
        "",
        report.provenance_line(),
    ]
    return "\n".join(lines)

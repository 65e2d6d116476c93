"""(d) Precision by construction: the labelled set of ``bench.cache.labelled`` through the semantic layer.

A pair is served when the cosine similarity of the two prompts (the local
embedder) reaches the threshold and the guard accepts it. Reported at the
default threshold and around it: paraphrase recall, wrong hits (parameter
changes served) with the one-sided 95 % Clopper-Pearson upper bound, the same
for single plain-word substitutions, the guard without its wording check (the
previous guard) for comparison, and the time the guard adds per lookup.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.cache.accuracy import similarities
from bench.cache.agent_replay import session
from bench.cache.labelled import LabelledPair, load
from caching.embedders.local import MiniLM
from caching.guard import compare, extract_literals, mismatch

DEFAULT_THRESHOLD = 0.85
THRESHOLDS = (0.80, 0.85, 0.90)
CONFIDENCE = 0.95
LONG_PROMPT_CHARS = 4096  # the long-prompt timing case: a task sentence repeated into a 4 KB prompt


def upper_bound(failures: int, trials: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of a rate after ``failures`` in ``trials``."""
    if trials == 0:
        return 1.0
    if failures >= trials:
        return 1.0
    alpha = 1 - confidence
    if failures == 0:
        return 1 - alpha ** (1 / trials)

    def cdf(p: float) -> float:
        return sum(math.comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(failures + 1))

    low, high = failures / trials, 1.0
    for _ in range(60):  # cdf falls as p grows: find p with cdf(p) = alpha
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) > alpha else (low, mid)
    return high


@dataclass(frozen=True, slots=True)
class Outcome:
    threshold: float
    recall: float
    served: int
    wrong: int
    changes: int
    wrong_upper: float  # of parameter changes served
    wrong_share_of_served: float
    wrong_share_upper: float
    plain_wrong: int
    plain_changes: int
    plain_upper: float
    recall_old_guard: float
    wrong_old_guard: int
    plain_wrong_old_guard: int
    wrong_no_guard: int


def _outcome(pairs: list[LabelledPair], sims: np.ndarray, new: np.ndarray, old: np.ndarray, t: float) -> Outcome:
    close = sims >= t
    hit = np.array([p.should_hit for p in pairs])
    plain = np.array([p.plain_word for p in pairs])
    served = close & new
    served_old = close & old
    changes = int((~hit).sum())
    wrong = int((served & ~hit).sum())
    total_served = int(served.sum())
    plain_changes = int((plain & ~hit).sum())
    plain_wrong = int((served & plain & ~hit).sum())
    return Outcome(
        threshold=t,
        recall=float((served & hit).sum() / hit.sum()),
        served=total_served,
        wrong=wrong,
        changes=changes,
        wrong_upper=upper_bound(wrong, changes),
        wrong_share_of_served=wrong / total_served if total_served else 0.0,
        wrong_share_upper=upper_bound(wrong, total_served),
        plain_wrong=plain_wrong,
        plain_changes=plain_changes,
        plain_upper=upper_bound(plain_wrong, plain_changes),
        recall_old_guard=float((served_old & hit).sum() / hit.sum()),
        wrong_old_guard=int((served_old & ~hit).sum()),
        plain_wrong_old_guard=int((served_old & plain & ~hit).sum()),
        wrong_no_guard=int((close & ~hit).sum()),
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(values), "p99_ms": _percentile(values, 0.99)}


def _timed(texts: list[tuple[str, str]]) -> dict[str, Any]:
    """Time the verification of one lookup, as ``serving.cache_step`` runs it (ms, wall clock and CPU).

    *lookup*: the new prompt analysed (``extract_literals``, uncached) and compared
    with a stored prompt whose features are already kept (``guard.literals``: the
    process stored the entry, or met it before); each further candidate adds one
    ``compare`` (µs). *first meeting*: both prompts analysed, the stored one for the
    first time in this process.
    """
    wall: list[float] = []
    cpu: list[float] = []
    first: list[float] = []
    for _ in range(3):
        for cached, new in texts:
            stored = extract_literals(cached)
            started, started_cpu = time.perf_counter(), time.thread_time()
            compare(stored, extract_literals(new))
            cpu.append((time.thread_time() - started_cpu) * 1e3)
            wall.append((time.perf_counter() - started) * 1e3)
            started = time.perf_counter()
            compare(extract_literals(cached), extract_literals(new))
            first.append((time.perf_counter() - started) * 1e3)
    return {
        "calls": len(wall),
        "chars": statistics.mean(len(new) for _, new in texts),
        "lookup": _summary(wall),
        "lookup_cpu": _summary(cpu),
        "first_meeting": _summary(first),
    }


def guard_latency(short: list[tuple[str, str]], long: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Time the guard (literals and wording check) adds to a lookup, for short and ~4 KB prompts."""
    return {"short": _timed(short), "long": _timed(long)}


def _long(text: str) -> str:
    """``text`` repeated into a prompt of at least ``LONG_PROMPT_CHARS`` characters."""
    return " ".join([text] * math.ceil(LONG_PROMPT_CHARS / (len(text) + 1)))


def evaluate(model: MiniLM) -> dict[str, Any]:
    pairs = load()
    sims = similarities(model, pairs)  # type: ignore[arg-type]
    reasons = [mismatch(p.cached, p.new) for p in pairs]
    new = np.array([reason == "" for reason in reasons])
    old = np.array([mismatch(p.cached, p.new, wording=False) == "" for p in pairs])
    outcomes = [_outcome(pairs, sims, new, old, t) for t in THRESHOLDS]
    default = next(o for o in outcomes if o.threshold == DEFAULT_THRESHOLD)
    per_domain: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # hits, served hits, changes, wrong, old
    for pair, sim, accepted, accepted_old in zip(pairs, sims, new, old, strict=True):
        row = per_domain[pair.domain]
        close = sim >= DEFAULT_THRESHOLD
        if pair.should_hit:
            row[0] += 1
            row[1] += bool(close and accepted)
        else:
            row[2] += 1
            row[3] += bool(close and accepted)
            row[4] += bool(close and accepted_old)
    examples = [
        (p.cached, p.new, round(float(s), 3))
        for p, s, a, o in zip(pairs, sims, new, old, strict=True)
        if not p.should_hit and p.plain_word and s >= DEFAULT_THRESHOLD and o and not a
    ][:6]
    replay_prompts = [r.messages[-1]["content"] for r in session()]
    short = [(p.cached, p.new) for p in pairs] + list(itertools.pairwise(replay_prompts))
    long = [(_long(a.cached), _long(a.new)) for a in pairs[::16]]
    return {
        "pairs": len(pairs),
        "hits": sum(p.should_hit for p in pairs),
        "changes": sum(not p.should_hit for p in pairs),
        "plain_changes": sum(p.plain_word for p in pairs),
        "domains": len(per_domain),
        "families": len({p.family for p in pairs}),
        "outcomes": outcomes,
        "default": default,
        "per_domain": dict(per_domain),
        "examples": examples,
        "rejected_by": dict(Counter(r for p, r in zip(pairs, reasons, strict=True) if p.should_hit and r)),
        "latency": guard_latency(short, long),
    }


def report(result: dict[str, Any]) -> list[str]:
    d: Outcome = result["default"]
    short, long = result["latency"]["short"], result["latency"]["long"]
    lines = [
        f"`bench/cache/data/labelled_pairs.jsonl` (generated by `python -m bench.cache.labelled` from "
        f"{result['families']} task families in {result['domains']} domains): {result['hits']} paraphrase pairs "
        f"(label *hit*) and {result['changes']} parameter changes (label *miss*), {result['plain_changes']} of them "
        "single plain-word substitutions.",
        "",
        "| target | result |",
        "| --- | --- |",
        f"| wrong hits ≤ 0.5 % (threshold {DEFAULT_THRESHOLD}) | **{d.wrong} of {d.changes} parameter changes served "
        f"({d.wrong / d.changes:.2%}); 95 % upper bound {d.wrong_upper:.2%}**. Of the {d.served} answers served, "
        f"{d.wrong_share_of_served:.2%} were wrong (upper bound {d.wrong_share_upper:.2%}) |",
        f"| plain-word substitutions | {d.plain_wrong} of {d.plain_changes} served (upper bound {d.plain_upper:.2%}); "
        f"the guard without its wording check served {d.plain_wrong_old_guard} |",
        f"| paraphrase recall (reported) | {d.recall:.1%} (guard without the wording check: "
        f"{d.recall_old_guard:.1%}); the guard refuses "
        + ", ".join(
            f"{count} by its {rule} rule" for rule, count in sorted(result["rejected_by"].items(), key=lambda i: -i[1])
        )
        + f" of the {result['hits']} paraphrases |",
        f"| lookup time added by the verification ≤ 2 ms p99 | **short prompts: p99 "
        f"{short['lookup']['p99_ms']:.3f} ms** "
        f"(p50 {short['lookup']['p50_ms']:.3f}); **~4 KB prompts: p99 {long['lookup']['p99_ms']:.3f} ms** (p50 "
        f"{long['lookup']['p50_ms']:.3f}; CPU p50 / p99 {long['lookup_cpu']['p50_ms']:.3f} / "
        f"{long['lookup_cpu']['p99_ms']:.3f} ms). The first time a process meets a stored ~4 KB prompt it analyses "
        f"it too: p99 {long['first_meeting']['p99_ms']:.3f} ms ({short['calls'] + long['calls']} timed lookups) |",
        "",
        "| threshold | paraphrase recall | wrong hits / changes | 95 % upper | plain-word wrong | recall, old guard "
        "| wrong, old guard | wrong, no guard |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in result["outcomes"]:
        lines.append(
            f"| {o.threshold:.2f} | {o.recall:.1%} | {o.wrong} / {o.changes} | {o.wrong_upper:.2%} | "
            f"{o.plain_wrong} / {o.plain_changes} | {o.recall_old_guard:.1%} | {o.wrong_old_guard} | "
            f"{o.wrong_no_guard} |"
        )
    lines += ["", "| domain | paraphrases | served | recall | changes | wrong | wrong, old guard |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for domain, (hits, served, changes, wrong, old) in sorted(result["per_domain"].items()):
        lines.append(f"| {domain} | {hits} | {served} | {served / hits:.0%} | {changes} | {wrong} | {old} |")
    if result["examples"]:
        lines += [
            "",
            "Plain-word substitutions the previous guard served and the wording check now refuses:",
            "",
            "| cached | new | similarity |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {a} | {b} | {s} |" for a, b, s in result["examples"]]
    return lines

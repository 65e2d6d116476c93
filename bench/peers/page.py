"""The Markdown a run produces: printed, saved beside the JSON, and put into docs/benchmarks.md and README.md."""

from __future__ import annotations

from bench import report as results
from bench.peers import report

ROW_MEANING = {
    "mock": "the mock upstream called directly (the baseline of Δp50; runs on the load CPU)",
    "portkey": "Portkey's OSS gateway under node, provider `openai` with the mock as custom host",
    "litellm": "LiteLLM's proxy, one model on the mock, a master key, no database",
    "bare-relay": (
        "`bench/bare_relay.py` under uvicorn with the gateway's flags: posts each request to the mock with "
        "aiohttp and writes back what it reads, nothing else (what any Python relay on this stack costs)"
    ),
    "gateway-daphne": "this gateway under Daphne, full pipeline",
    "gateway-uvicorn": "this gateway under uvicorn (uvloop + httptools), full pipeline",
    "gateway-uvicorn-auto": "the same with `model: auto` over three banded tiers",
    "gateway-uvicorn-semantic": "the same with the semantic cache layer on (local embedder), every lookup a miss",
    "gateway-uvicorn-no-store": "the same with `X-Gateway-Cache: no-store` (no cache lookup, no store)",
}


def _versions(meta: dict[str, object]) -> str:
    found = meta.get("versions") or {}
    assert isinstance(found, dict)
    parts = [f"{name} {version}" for name, version in sorted(found.items())]
    return ", ".join(parts) or "unknown"


def render(
    meta: dict[str, object],
    summary: list[dict[str, float | str]],
    versus: list[dict[str, object]],
    skipped: dict[str, str],
    shortfalls: list[str],
) -> str:
    """The whole generated section (tables and the facts of the run)."""
    high = int(meta["concurrency"])  # type: ignore[call-overload]
    pinned = meta["pinning"]
    lines = [
        f"Run of {meta['date']} at commit `{meta['commit']}`{' (with local changes)' if meta['dirty'] else ''}, "
        f"{meta['machine']}; {pinned}. Load generator: {meta['loadgen']}. {meta['duration']:g} s per cell after "
        f"{meta['warmup']:g} s of warm-up; whole run {meta['elapsed_s']:.0f} s. Versions: {_versions(meta)}. "
        f"Raw results: `{meta['results']}`.",
        "",
        report.summary_table(summary, high),
        "",
        "Rows: " + "; ".join(f"`{r['target']}` = {ROW_MEANING.get(str(r['target']), '')}" for r in summary) + ".",
    ]
    if shortfalls:
        lines += ["", "Too few answers in the window to trust that cell (a server slower than the load):", ""]
        lines += [f"- {note}." for note in shortfalls]
    if skipped:
        lines += ["", "Not measured in this run:", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in skipped.items()]
    if versus:
        lines += [
            "",
            "Against Portkey, same run: ratios of the median CPU ms, in brackets the range of the ratios round "
            "by round (targets from issue 10):",
            "",
            report.versus_table(versus, high),
        ]
    drain = meta.get("cache_drain")
    if isinstance(drain, dict) and drain.get("entries"):
        lines += [
            "",
            "Not in any row above: the Celery worker inserts the answers the gateway stores in its response cache "
            f"(`caching/entry_queue.py`). Draining the {drain['entries']:,} this run queued cost "
            f"{drain['cpu_us_per_entry']:g} µs of the drainer's CPU per entry (PostgreSQL's own time not included); "
            "usage records are likewise written by the worker.",
        ]
    busiest = max((float(r["other_cores"]) for r in summary), default=0.0)
    lines += [
        "",
        f"Other processes on the machine used up to {busiest:.2f} cores during a cell of this run "
        "(column *Other load*): latencies and RPS suffer from that far more than CPU per request.",
    ]
    if meta.get("provenance"):  # runs saved before it was recorded have none
        lines += ["", results.provenance_line(meta["provenance"])]  # type: ignore[arg-type]
    return "\n".join(lines)

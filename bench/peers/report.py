"""From the cells of a run: one row per server, ratios against Portkey, and the Markdown written to the docs.

Every number in the generated text comes from the run's JSON; the wording
around it (targets met or not) is chosen from the numbers.
"""

from __future__ import annotations

import math
import statistics

from bench import report as tables

CPU_TARGET = 0.8  # gateway CPU per request ≤ 0.8 x Portkey's
STREAM_TARGET = 1.0  # gateway CPU per 20-chunk stream ≤ 1.0 x Portkey's
BASELINE = "mock"
REFERENCE = "portkey"
GATEWAY_SERVERS = ("gateway-daphne", "gateway-uvicorn")
SECTION = "bench-peers"  # <!-- bench-peers:start --> ... <!-- bench-peers:end --> in the docs (bench.docs)


SUMMED = ("requests", "good", "errors", "seconds")


def aggregate(cells: list[dict[str, object]]) -> list[dict[str, object]]:
    """One cell per (target, mode, concurrency) over the rounds: medians, with counts summed.

    ``cpu_ms_per_req_rounds`` keeps every round's CPU per request, to show the spread.
    """
    groups: dict[tuple[object, object, object], list[dict[str, object]]] = {}
    for cell in cells:
        groups.setdefault((cell["target"], cell["stream"], cell["concurrency"]), []).append(cell)
    merged: list[dict[str, object]] = []
    for (target, stream, concurrency), members in groups.items():
        out: dict[str, object] = {"target": target, "stream": stream, "concurrency": concurrency}
        for key in dict.fromkeys(k for m in members for k in m):
            numbers = [m[key] for m in members if isinstance(m.get(key), (int, float)) and not isinstance(m[key], bool)]
            if key in out or key == "round" or not numbers:
                continue
            values = [float(v) for v in numbers]  # type: ignore[arg-type]
            values = [v for v in values if not math.isnan(v)]
            if key in SUMMED:
                out[key] = sum(values)
            else:
                out[key] = statistics.median(values) if values else math.nan
        out["rounds"] = len(members)
        out["cpu_ms_per_req_rounds"] = [m["cpu_ms_per_req"] for m in members]
        out["rps"] = float(out["good"]) / float(out["seconds"]) if out.get("seconds") else math.nan  # type: ignore[arg-type]
        merged.append(out)
    return merged


def shortfalls(cells: list[dict[str, object]]) -> list[str]:
    """Sentences for cells that completed too few answers to trust their per-request numbers."""
    notes = []
    for cell in cells:
        good, connections = int(cell["good"]), int(cell["concurrency"])  # type: ignore[call-overload]
        if good >= 2 * connections:
            continue
        what = "20-chunk streams" if cell["stream"] else "JSON answers"
        notes.append(
            f"`{cell['target']}` completed {good} {what} at concurrency {connections} in round "
            f"{int(cell.get('round', 0)) + 1} ({cell['sent']} sent in {float(cell['duration_s']):g} s)"  # type: ignore[arg-type]
            + ("" if good else ": no CPU per request for that cell")
        )
    return notes


def _cell(cells: list[dict[str, object]], target: str, stream: bool, concurrency: int) -> dict[str, object] | None:
    for cell in cells:
        if cell["target"] == target and cell["stream"] == stream and cell["concurrency"] == concurrency:
            return cell
    return None


def _num(cell: dict[str, object] | None, key: str) -> float:
    if cell is None or cell.get(key) is None:
        return math.nan
    return float(cell[key])  # type: ignore[arg-type]


def rows(cells: list[dict[str, object]], targets: list[str], high: int) -> list[dict[str, float | str]]:
    """One summary per target (the numbers of the table); Δp50 against the mock at concurrency 1."""
    base_json = _num(_cell(cells, BASELINE, False, 1), "p50_ms")
    base_stream = _num(_cell(cells, BASELINE, True, 1), "p50_ms")
    out: list[dict[str, float | str]] = []
    for target in targets:
        j1, jn = _cell(cells, target, False, 1), _cell(cells, target, False, high)
        s1, sn = _cell(cells, target, True, 1), _cell(cells, target, True, high)
        if j1 is None and jn is None:
            continue
        helpers = _num(jn, "redis_cpu_ms_per_req") + _num(jn, "postgres_cpu_ms_per_req")
        out.append(
            {
                "target": target,
                "rps": _num(jn, "rps"),
                "p50_ms": _num(jn, "p50_ms"),
                "p99_ms": _num(jn, "p99_ms"),
                "p50_ms_c1": _num(j1, "p50_ms"),
                "p99_ms_c1": _num(j1, "p99_ms"),
                "delta_p50_ms_c1": _num(j1, "p50_ms") - base_json if target != BASELINE else math.nan,
                "cpu_ms_c1": _num(j1, "cpu_ms_per_req"),
                "cpu_ms": _num(jn, "cpu_ms_per_req"),
                "stream_rps": _num(sn, "rps"),
                "stream_p50_ms_c1": _num(s1, "p50_ms"),
                "stream_delta_p50_ms_c1": _num(s1, "p50_ms") - base_stream if target != BASELINE else math.nan,
                "stream_cpu_ms_c1": _num(s1, "cpu_ms_per_req"),
                "stream_cpu_ms": _num(sn, "cpu_ms_per_req"),
                "errors": _num(jn, "errors") + _num(sn, "errors"),
                "helpers_cpu_ms": helpers,
                "other_cores": max(_num(c, "other_cores") for c in (j1, jn, s1, sn)),
            }
        )
    return out


def _ratio(mine: float, theirs: float) -> float:
    return mine / theirs if theirs and not math.isnan(theirs) else math.nan


RATIO_CELLS = {"cpu_ms_c1": (False, 1), "cpu_ms": (False, 0), "stream_cpu_ms_c1": (True, 1), "stream_cpu_ms": (True, 0)}


def round_ratios(cells: list[dict[str, object]], target: str, stream: bool, concurrency: int) -> list[float]:
    """``target``'s CPU per request over Portkey's, round by round (both measured minutes apart in a round)."""
    mine = {
        c.get("round"): c
        for c in cells
        if (c["target"], c["stream"], c["concurrency"]) == (target, stream, concurrency)
    }
    theirs = {
        c.get("round"): c
        for c in cells
        if (c["target"], c["stream"], c["concurrency"]) == (REFERENCE, stream, concurrency)
    }
    ratios = [_ratio(_num(mine[r], "cpu_ms_per_req"), _num(theirs[r], "cpu_ms_per_req")) for r in mine if r in theirs]
    return [r for r in ratios if not math.isnan(r)]


def versus_portkey(
    summary: list[dict[str, float | str]], cells: list[dict[str, object]] | None = None, high: int = 64
) -> list[dict[str, object]]:
    """For each gateway row: its ratios to Portkey's row and whether each target is met.

    With the raw ``cells`` (one per round), each ratio also gets its per-round values (``*_rounds``).
    """
    portkey = next((r for r in summary if r["target"] == REFERENCE), None)
    if portkey is None:
        return []
    out: list[dict[str, object]] = []
    for row in summary:
        if not str(row["target"]).startswith("gateway-"):
            continue
        ratios = {
            key: _ratio(float(row[key]), float(portkey[key]))
            for key in ("cpu_ms_c1", "cpu_ms", "stream_cpu_ms_c1", "stream_cpu_ms")
        }
        worst_cpu = max(ratios["cpu_ms_c1"], ratios["cpu_ms"])
        worst_stream = max(ratios["stream_cpu_ms_c1"], ratios["stream_cpu_ms"])
        delta, reference_delta = float(row["delta_p50_ms_c1"]), float(portkey["delta_p50_ms_c1"])
        per_round = {
            f"{key}_ratio_rounds": round_ratios(cells or [], str(row["target"]), stream, conc or high)
            for key, (stream, conc) in RATIO_CELLS.items()
        }
        out.append(
            {
                "target": row["target"],
                **{f"{key}_ratio": value for key, value in ratios.items()},
                **per_round,
                "cpu_ok": worst_cpu <= CPU_TARGET,
                "stream_ok": worst_stream <= STREAM_TARGET,
                "delta_p50_ms_c1": delta,
                "portkey_delta_p50_ms_c1": reference_delta,
                "delta_ok": delta <= reference_delta,
                "errors": row["errors"],
                "errors_ok": row["errors"] == 0,
            }
        )
    return out


def _f(value: object, digits: int = 2) -> str:
    return tables.fmt(value, digits)


def _pair(a: object, b: object) -> str:
    return f"{_f(a)} / {_f(b)}"


def _x(value: object, rounds: object = None) -> str:
    """A ratio, with the range of its per-round values when there are several."""
    if not isinstance(value, float) or math.isnan(value):
        return "–"
    text = f"{value:.2f}×"
    if isinstance(rounds, list) and len(rounds) > 1:
        text += f" ({min(rounds):.2f}–{max(rounds):.2f})"
    return text


def _yes(ok: object) -> str:
    return "met" if ok else "**not met**"


def summary_table(summary: list[dict[str, float | str]], high: int) -> str:
    headers = [
        "Server", f"RPS c={high}", f"p50 / p99 ms c={high}", "p50 / p99 ms c=1", "Δp50 ms c=1",
        "CPU ms/req c=1", f"CPU ms/req c={high}", "CPU ms/stream c=1", f"CPU ms/stream c={high}",
        f"Stream RPS c={high}", "Stream Δp50 ms c=1", f"Errors c={high}", f"Redis+PG ms/req c={high}",
        "Other load (cores)",
    ]  # fmt: skip
    body = [
        [r["target"], _f(r["rps"], 0), _pair(r["p50_ms"], r["p99_ms"]), _pair(r["p50_ms_c1"], r["p99_ms_c1"]),
         _f(r["delta_p50_ms_c1"]), _f(r["cpu_ms_c1"], 3), _f(r["cpu_ms"], 3), _f(r["stream_cpu_ms_c1"], 3),
         _f(r["stream_cpu_ms"], 3), _f(r["stream_rps"], 0), _f(r["stream_delta_p50_ms_c1"]), _f(r["errors"], 0),
         _f(r["helpers_cpu_ms"], 3), _f(r["other_cores"])]
        for r in summary
    ]  # fmt: skip
    return tables.table(headers, body)


def versus_table(versus: list[dict[str, object]], high: int) -> str:
    headers = [
        "Gateway row", "CPU/req vs Portkey c=1", f"CPU/req vs Portkey c={high}",
        f"≤ {CPU_TARGET}×", "CPU/stream vs Portkey c=1", f"CPU/stream vs Portkey c={high}", f"≤ {STREAM_TARGET}×",
        "Δp50 c=1 ms (Portkey's)", "≤ Portkey's", f"Errors c={high}",
    ]  # fmt: skip
    body = [
        [v["target"], _x(v["cpu_ms_c1_ratio"], v.get("cpu_ms_c1_ratio_rounds")),
         _x(v["cpu_ms_ratio"], v.get("cpu_ms_ratio_rounds")), _yes(v["cpu_ok"]),
         _x(v["stream_cpu_ms_c1_ratio"], v.get("stream_cpu_ms_c1_ratio_rounds")),
         _x(v["stream_cpu_ms_ratio"], v.get("stream_cpu_ms_ratio_rounds")), _yes(v["stream_ok"]),
         f"{_f(v['delta_p50_ms_c1'])} ({_f(v['portkey_delta_p50_ms_c1'])})", _yes(v["delta_ok"]), _f(v["errors"], 0)]
        for v in versus
    ]  # fmt: skip
    return tables.table(headers, body)


def _range(*values: object) -> str:
    finite = [float(v) for v in values if isinstance(v, float) and not math.isnan(v)]  # type: ignore[arg-type]
    if not finite:
        return "–"
    low, high = min(finite), max(finite)
    return f"{low:.2f}×" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}×"


def readme_lines(
    versus: list[dict[str, object]], meta: dict[str, object], summary: list[dict[str, float | str]]
) -> list[str]:
    """One bullet per server (Daphne, uvicorn): the measured ratios against Portkey and the verdicts."""
    busiest = max((float(r["other_cores"]) for r in summary), default=0.0)
    lines = [
        f"Measured by `make bench-peers` at commit `{meta['commit']}` on {meta['date']} "
        f"({meta['machine']}; ratios from one run, at concurrency 1 and {meta['concurrency']}; other "
        f"processes used up to {busiest:.2f} cores meanwhile, which inflates latencies far more than CPU):",
        "",
    ]
    for v in versus:
        if v["target"] not in GATEWAY_SERVERS:
            continue
        lines.append(
            f"- **{v['target']}**: CPU per request {_range(v['cpu_ms_c1_ratio'], v['cpu_ms_ratio'])} Portkey's "
            f"(target ≤ {CPU_TARGET}×: {_yes(v['cpu_ok'])}); CPU per 20-chunk stream "
            f"{_range(v['stream_cpu_ms_c1_ratio'], v['stream_cpu_ms_ratio'])} (target ≤ {STREAM_TARGET}×: "
            f"{_yes(v['stream_ok'])}); added p50 at concurrency 1 {_f(v['delta_p50_ms_c1'])} ms against Portkey's "
            f"{_f(v['portkey_delta_p50_ms_c1'])} ms ({_yes(v['delta_ok'])}); "
            f"{_f(v['errors'], 0)} errors at {meta['concurrency']} connections."
        )
    if not any(v["target"] in GATEWAY_SERVERS for v in versus):
        lines.append("- No ratio: Portkey or the gateway rows were not measured in this run.")
    if meta.get("provenance"):  # runs saved before it was recorded have none
        stamp = tables.provenance_line(meta["provenance"])  # type: ignore[arg-type]
        lines += ["", f"{stamp} Raw results: `{meta['results']}`."]
    return lines

"""Replay long agent sessions and price their cached tokens: ``python -m bench.sessions`` (issue 17).

Each fixture session (``bench.sessions.fixtures``: Claude Code, Codex, Cursor-style; 32-38 turns)
is replayed three ways against the bundled mock upstream, which simulates provider prompt caching
per deployment (OpenAI: automatic longest-prefix caching per model and ``prompt_cache_key``;
Anthropic: ``cache_control`` breakpoints with lookback):

- **direct**: the client talks to the provider itself (Claude Code's own breakpoints: tools,
  system, the last two user turns; Codex's ``prompt_cache_key``; Cursor nothing);
- **gateway, rewrites off**: every token reduction and per-message cap off;
- **gateway, default**: the configuration a fresh install has (trimming on, caps on);
- **gateway, all on**: every reduction on (boilerplate, de-duplication, trimming, code mode,
  diff-first, caps), to show what each rewrite saves while the prefix stays cacheable;
- **gateway, all on + summaries**: the same with summarisation past 40,000 tokens (by the cheapest
  tier: tiers without bands get them in price order, so the sonnet tier).

A second, in-process table runs the reduction pipeline alone (every switch on, caps, a 32,000-token
budget) on every request of every session: the time it adds per request, and whether the last user
message and every tool call / tool result pair arrive intact.

Costs use the models' input / cache-read / cache-write / output prices (sonnet 3 / 0.30 / 3.75 / 15,
the OpenAI-style model 5 / 0.50 / - / 15). The OpenAI-style tier has a 32,000-token window, so
trimming takes steps on the two sessions routed there. Every tier has two deployments; the share of
turns on the session's main deployment is reported. Results go to ``docs/benchmarks-cache.md``
(section "sessions") and ``docs/results/sessions.json``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx2

from bench import stack
from bench.docs import replace_section
from bench.report import provenance_line, table, write
from bench.sessions.fixtures import load, request_points

VAR_DIR = stack.procs.BASE_DIR / "var" / "bench-sessions"
MILLION = Decimal(1_000_000)
PRICES = {  # model: (input, cache read, cache write, output) per million tokens
    "sonnet-a": ("3", "0.30", "3.75", "15"),
    "sonnet-b": ("3", "0.30", "3.75", "15"),
    "gpt-a": ("5", "0.50", None, "15"),
    "gpt-b": ("5", "0.50", None, "15"),
}
RUNS = ("direct", "rewrites_off", "default", "all_on", "all_on_summaries")
REWRITES = ("strip_ide_boilerplate", "dedupe_files", "trim_context", "diff_first_edits", "code_mode")
SUMMARY_THRESHOLD = 40_000  # the all-on run summarises conversations past this many tokens
CAPS_OFF = {"SYSTEM_MAX_CHARS": "0", "USER_MSG_MAX_CHARS": "0", "TOOL_RESULT_MAX_CHARS": "0"}


def configure(mock_url: str) -> str:
    """Providers, two deployments per tier with cache prices, the global policy and a key; returns the secret."""
    from providers.models import Model
    from routing.models import RoutingPolicy
    from tests.factories import make_key, make_model, make_provider, make_tier

    claude = make_provider(mock_url, kind="anthropic", name="claude", api_key_env="BENCH_MOCK_KEY")
    oai = make_provider(f"{mock_url}/v1", kind="openai", name="oai", api_key_env="BENCH_MOCK_KEY")
    models = {}
    for name, (price_in, read, write_price, price_out) in PRICES.items():
        provider = claude if name.startswith("sonnet") else oai
        models[name] = make_model(
            provider, name=name, upstream_model=f"mock-{name}", input_cost=price_in, output_cost=price_out
        )
        Model.objects.filter(pk=models[name].pk).update(
            cache_read_cost_per_million=Decimal(read),
            cache_write_cost_per_million=Decimal(write_price) if write_price else None,
            context_window=200_000 if name.startswith("sonnet") else 32_000,
        )
    make_tier("claude_tier", [models["sonnet-a"], models["sonnet-b"]])
    make_tier("gpt_tier", [models["gpt-a"], models["gpt-b"]])
    RoutingPolicy.objects.get_or_create(tenant=None)
    return make_key()[1]


def set_rewrites(mode: str) -> None:
    """``off``: every reduction off; ``default``: a fresh install's policy; ``all``: every reduction on."""
    from routing.models import RoutingPolicy

    policy = RoutingPolicy.objects.get(tenant=None)
    for name in REWRITES:
        default = RoutingPolicy._meta.get_field(name).default
        setattr(policy, name, {"off": False, "default": default, "all": True, "summaries": True}[mode])
    policy.summarize_context = mode == "summaries"
    policy.summarize_threshold_tokens = SUMMARY_THRESHOLD
    policy.save()


def _cost(model: str, prompt: int, read: int, written: int, completion: int) -> Decimal:
    price_in, price_read, price_write, price_out = (Decimal(p) if p else None for p in PRICES[model])
    assert price_in is not None and price_out is not None and price_read is not None
    fresh = prompt - read - written
    return (
        fresh * price_in + read * price_read + written * (price_write or price_in) + completion * price_out
    ) / MILLION


def _uncached(model: str, prompt: int, completion: int) -> Decimal:
    return (prompt * Decimal(PRICES[model][0]) + completion * Decimal(PRICES[model][3])) / MILLION


def replay_direct(session: dict[str, Any], mock_url: str) -> dict[str, Any]:
    """The client against the provider itself (primary deployment), priced here."""
    from providers.adapters.anthropic import build_request
    from providers.adapters.anthropic_translate import apply_cache_control
    from providers.adapters.base import Deployment, ProviderConfig

    anthropic = session["tier"] == "claude_tier"
    model = "sonnet-a" if anthropic else "gpt-a"
    provider = ProviderConfig(0, "direct", "anthropic", mock_url, "k", 5, 60, 600, 10)
    deployment = Deployment(0, model, f"mock-{model}", provider, Decimal(0), Decimal(0), 200_000, None)
    totals = Counter()
    with httpx2.Client(timeout=120) as client:
        for end in request_points(session["messages"]):
            body = {"model": model, "messages": session["messages"][:end], **session["extra"]}
            if session["tools"]:
                body["tools"] = session["tools"]
            if anthropic:
                payload = apply_cache_control(build_request(deployment, body, stream=False), enabled=True)
                payload["model"] = f"mock-{model}"
                answer = (
                    client.post(
                        f"{mock_url}/v1/messages",
                        json=payload,
                        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                    )
                    .raise_for_status()
                    .json()
                )
                usage = answer["usage"]
                read, written = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
                prompt = usage["input_tokens"] + read + written
                completion = usage["output_tokens"]
            else:
                payload = {**body, "model": f"mock-{model}"}
                answer = (
                    client.post(f"{mock_url}/v1/chat/completions", json=payload, headers={"Authorization": "Bearer k"})
                    .raise_for_status()
                    .json()
                )
                usage = answer["usage"]
                prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
                read, written = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0), 0
            totals["turns"] += 1
            totals["prompt"] += prompt
            totals["read"] += read
            totals["written"] += written
            totals["cost"] += _cost(model, prompt, read, written, completion)
            totals["uncached"] += _uncached(model, prompt, completion)
            totals[f"model:{model}"] += 1
    return dict(totals)


def replay_gateway(session: dict[str, Any], gateway_url: str, secret: str) -> list[str]:
    """Send every turn through the gateway; returns the request ids."""
    headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store", **session["headers"]}
    ids = []
    with httpx2.Client(timeout=120) as client:
        for end in request_points(session["messages"]):
            body = {"model": session["tier"], "messages": session["messages"][:end], **session["extra"]}
            if session["tools"]:
                body["tools"] = session["tools"]
            response = client.post(f"{gateway_url}/v1/chat/completions", json=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{session['name']} turn {end}: {response.status_code} {response.text[:300]}")
            ids.append(response.headers["x-request-id"])
    return ids


def gateway_totals(ids: list[str]) -> dict[str, Any]:
    from billing import usage
    from billing.models import UsageEvent

    deadline = time.monotonic() + 60
    while UsageEvent.objects.filter(request_id__in=ids).count() < len(ids) and time.monotonic() < deadline:
        usage.drain()
        time.sleep(0.2)
    totals: Counter = Counter()
    for event in UsageEvent.objects.filter(request_id__in=ids):
        totals["turns"] += 1
        totals["prompt"] += event.prompt_tokens
        totals["read"] += event.cache_read_tokens
        totals["written"] += event.cache_write_tokens
        totals["cost"] += event.cost_usd
        totals["uncached"] += _uncached(event.model, event.prompt_tokens, event.completion_tokens)
        totals[f"model:{event.model}"] += 1
        for feature, saved in (event.tokens_saved or {}).items():
            totals[f"saved:{feature}"] += int(saved)
    return dict(totals)


def pipeline_check(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """The reduction pipeline on every request: added time, and the last user turn and tool chain intact."""
    from routing.reduction import Switches, reduce_messages
    from routing.reduction.caps import Caps
    from routing.reduction.common import message_text
    from routing.reduction.instructions import DIFF_FIRST_INSTRUCTION

    switches = Switches(True, True, True, True, True)
    result: dict[str, Any] = {}
    for session in sessions:
        times: list[float] = []
        intact = 0
        points = request_points(session["messages"])
        for end in points:
            messages = session["messages"][:end]
            started = time.perf_counter()
            reduced = reduce_messages(messages, switches, budget_tokens=32_000, message_caps=Caps())
            times.append((time.perf_counter() - started) * 1000)
            sent = reduced.messages
            final_ok = sent[-1]["role"] == messages[-1]["role"] and sent[-1].get("tool_call_id") == messages[-1].get(
                "tool_call_id"
            )
            last_user = next(m for m in reversed(messages) if m["role"] == "user")
            sent_last = next(m for m in reversed(sent) if m["role"] == "user")
            sent_text = message_text(sent_last).replace(DIFF_FIRST_INSTRUCTION, "").rstrip()
            # The question itself (its last line of prose) arrives whole; IDE boilerplate and repeated files
            # around it may be cut by design.
            prose = [line for line in message_text(last_user).splitlines() if line.strip() and line[0] != "<"]
            last_ok = final_ok and (not prose or prose[-1] in sent_text)
            calls = {c["id"] for m in sent for c in m.get("tool_calls") or []}
            results = {m["tool_call_id"] for m in sent if m["role"] == "tool"}
            intact += bool(last_ok and calls == results)
        ordered = sorted(times)
        result[session["name"]] = {
            "requests": len(points),
            "p50_ms": ordered[len(ordered) // 2],
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "intact": intact,
        }
    return result


def main_share(totals: dict[str, Any]) -> float:
    counts = [v for k, v in totals.items() if k.startswith("model:")]
    return max(counts) / totals["turns"] if counts else 0.0


def run() -> dict[str, Any]:
    sessions = load()
    results: dict[str, dict[str, Any]] = {s["name"]: {} for s in sessions}
    with stack.backing_services(VAR_DIR) as backing:
        env = {**backing.env, "BENCH_MOCK_KEY": "bench", "LOG_LEVEL": "WARNING"}
        with stack.mock_upstream(env, backing.logs) as (_pid, mock_url):
            secret = configure(mock_url)
            for session in sessions:
                httpx2.post(f"{mock_url}/_mock/reset")
                results[session["name"]]["direct"] = replay_direct(session, mock_url)
            for run_name, extra_env, rewrites in (
                ("rewrites_off", CAPS_OFF, "off"),
                ("default", {}, "default"),
                ("all_on", {}, "all"),
                ("all_on_summaries", {}, "summaries"),
            ):
                set_rewrites(rewrites)
                httpx2.post(f"{mock_url}/_mock/reset")
                with stack.gateway("daphne", {**env, **extra_env}, backing.logs) as (_gpid, gateway_url):
                    for session in sessions:
                        ids = replay_gateway(session, gateway_url, secret)
                        results[session["name"]][run_name] = gateway_totals(ids)
    return {
        "sessions": {s["name"]: {"client": s["client"], **results[s["name"]]} for s in sessions},
        "pipeline": pipeline_check(sessions),
    }


def _f(value: Any) -> float:
    return float(value)


def report(data: dict[str, Any]) -> list[str]:
    rows = []
    checks = []
    for name, runs in data["sessions"].items():
        for run_name in RUNS:
            t = runs[run_name]
            saved = ", ".join(
                f"{k.removeprefix('saved:')} {v:,}" for k, v in sorted(t.items()) if k.startswith("saved:") and v
            )
            rows.append(
                [
                    name if run_name == "direct" else "",
                    run_name.replace("_", " "),
                    t["turns"],
                    f"{_f(t['cost']):.4f}",
                    f"{_f(t['uncached']):.4f}",
                    f"{t['read'] / t['prompt']:.1%}" if t["prompt"] else "0%",
                    f"{t['written']:,}",
                    f"{main_share(t):.0%}",
                    saved or "-",
                ]
            )
        default, off, direct = runs["default"], runs["rewrites_off"], runs["direct"]
        checks.append(
            [
                name,
                "yes" if _f(default["cost"]) <= _f(off["cost"]) * 1.0001 else "**no**",
                f"{_f(default['cost']) / _f(direct['uncached']):.2f}×",
                "yes" if _f(default["cost"]) <= 0.6 * _f(direct["uncached"]) else "**no**",
                "yes" if main_share(default) >= 0.95 else "**no**",
            ]
        )
    return [
        "`python -m bench.sessions` replays three fixture sessions (`bench/sessions/data/`, generated by "
        "`python -m bench.sessions.fixtures`) through the mock upstream's prompt-cache simulation.",
        "",
        table(
            [
                "session",
                "run",
                "turns",
                "cost USD",
                "same tokens without prompt caching USD",
                "cached share of prompt tokens",
                "cache-write tokens",
                "turns on main deployment",
                "tokens saved by rewrites",
            ],
            rows,
        ),
        "",
        table(
            [
                "session",
                "default ≤ rewrites off",
                "default / direct without caching",
                "≤ 0.6×",
                "≥ 95 % of turns on one deployment",
            ],
            checks,
        ),
        "",
        "The reduction pipeline alone (every switch on, caps, 32,000-token budget), per request:",
        "",
        table(
            ["session", "requests", "added p50 ms", "added p99 ms", "last user turn and tool chain intact"],
            [
                [name, p["requests"], f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}", f"{p['intact']} / {p['requests']}"]
                for name, p in data["pipeline"].items()
            ],
        ),
    ]


def main(argv: list[str]) -> int:
    data = run()
    lines = report(data)
    path = write("sessions", data, "\n".join(lines))
    lines += ["", f"{provenance_line()} Raw results: `{path.relative_to(stack.procs.BASE_DIR)}`."]
    replace_section(stack.procs.BASE_DIR / "docs" / "benchmarks-cache.md", "sessions", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

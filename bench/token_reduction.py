"""Token reduction on a replayed IDE session: what each feature saves.

``python -m bench.token_reduction`` replays ``bench/fixtures/cursor_session.json``
(32 turns of a recorded-style Cursor chat on this repository: Cursor's system
prompt, its ``<user_info>`` / ``<rules>`` blocks and the attached files on every
turn, the whole history resent with each request, edit answers that repeat the
whole file) through ``routing.reduction`` — the same pure transforms the gateway
runs, no HTTP — and reports prompt tokens per request with each feature alone
and all together, for a 200k-token model (no trimming needed) and for the local
32k-token fallback (trimming). Diff-first is measured on the output side: the
edited file's tokens against a unified diff of the same change. Token counts
are the gateway's own estimate (4 characters a token). Results go to
``bench/results/token_reduction.json`` and ``docs/benchmarks-token-reduction.md``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import report
from providers.adapters.base import Deployment, ProviderConfig
from providers.adapters.tokens import estimate_tokens
from routing.reduction import Switches, context_budget, reduce_messages
from routing.reduction.boilerplate import clear_block_cache
from routing.reduction.common import Message, messages_tokens
from routing.reduction.dedupe import find_units
from routing.reduction.instructions import CODE_MODE_INSTRUCTION, DIFF_FIRST_INSTRUCTION, edit_request

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "cursor_session.json"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-token-reduction.md"
INPUT_PRICE = Decimal("3.0")  # seeded sonnet-4.5 (code_gen) input price, USD per million tokens
FEATURES = ("strip_ide_boilerplate", "dedupe_files", "diff_first_edits", "code_mode")
_PROVIDER = ProviderConfig(0, "bench", "openai", "http://bench", None, 1, 1, 1, 1)


def deployment(window: int, name: str) -> Deployment:
    return Deployment(0, name, name, _PROVIDER, INPUT_PRICE, Decimal(15), window, None)


LARGE = deployment(200_000, "sonnet-4.5 (200k)")
SMALL = deployment(32_768, "qwen-3-coder-32b (32k)")


@dataclass(frozen=True, slots=True)
class Request:
    turn: int
    messages: list[Message]
    edit_full_tokens: int  # the edited file, as a whole-file answer repeats it (0 when not an edit)
    edit_diff_tokens: int  # the same change as a unified diff


def _attachment(path: str, text: str) -> str:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return f"<file_contents>\n```1:{lines}:{path}\n{text.rstrip()}\n```\n</file_contents>"


def _user_message(session: dict[str, Any], turn: dict[str, Any], files: dict[str, str]) -> str:
    attached = "\n".join(_attachment(path, files[path]) for path in turn["attach"])
    return (
        f"<user_info>\n{session['user_info']}\n</user_info>\n\n<rules>\n{session['rules']}\n</rules>\n\n"
        "<additional_data>\nBelow are some potentially helpful pieces of information for responding to the "
        f"user's request:\n\n<attached_files>\n{attached}\n</attached_files>\n</additional_data>\n\n"
        f"<user_query>\n{turn['query']}\n</user_query>"
    )


def replay(session: dict[str, Any]) -> list[Request]:
    """The requests the IDE sends, one per turn, each with the whole history before it."""
    files = dict(session["files"])
    history: list[Message] = [{"role": "system", "content": session["system"]}]
    requests = []
    for number, turn in enumerate(session["turns"], start=1):
        history.append({"role": "user", "content": _user_message(session, turn, files)})
        full = diff = 0
        answer = turn["answer"]
        if turn["edit"]:
            path, before = turn["edit"]["path"], files[turn["edit"]["path"]]
            after = before.replace(turn["edit"]["old"], turn["edit"]["new"])
            unified = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), path, path))
            full, diff = estimate_tokens(after), estimate_tokens(f"```diff\n{unified}```")
            answer = f"{answer}\n\n```python {path}\n{after.rstrip()}\n```"
            files[path] = after
        requests.append(Request(number, list(history), full, diff))
        history.append({"role": "assistant", "content": answer})
    return requests


def _reduced_tokens(request: Request, switches: Switches, target: Deployment | None) -> int:
    budget = context_budget(target, {}) if target is not None and switches.trim_context else None
    return messages_tokens(reduce_messages(request.messages, switches, budget_tokens=budget).messages)


def measure(requests: list[Request]) -> dict[str, Any]:
    baseline = [messages_tokens(r.messages) for r in requests]
    total = sum(baseline)
    scenarios: dict[str, tuple[Switches, Deployment | None]] = {
        "strip_ide_boilerplate": (Switches(strip_ide_boilerplate=True), None),
        "dedupe_files": (Switches(dedupe_files=True), None),
        "strip + dedupe": (Switches(strip_ide_boilerplate=True, dedupe_files=True), None),
        "diff_first_edits (prompt side)": (Switches(diff_first_edits=True), None),
        "code_mode (prompt side)": (Switches(code_mode=True), None),
        "trim_context, 32k window": (Switches(trim_context=True), SMALL),
        "all, 200k window": (Switches(True, True, True, True, True), LARGE),
        "all, 32k window": (Switches(True, True, True, True, True), SMALL),
    }
    rows = []
    for name, (switches, target) in scenarios.items():
        reduced = [_reduced_tokens(r, switches, target) for r in requests]
        saved = total - sum(reduced)
        rows.append(
            {
                "scenario": name,
                "prompt_tokens": sum(reduced),
                "saved_tokens": saved,
                "saved_pct": 100.0 * saved / total,
                "last_request_tokens": reduced[-1],
                "saved_usd": float(Decimal(saved) * INPUT_PRICE / Decimal(1_000_000)),
            }
        )
    over_window = sum(1 for tokens in baseline if tokens > context_budget(SMALL, {}))
    edits = [r for r in requests if r.edit_full_tokens]
    detected = sum(1 for r in edits if edit_request(r.messages) is not None)
    false_edits = sum(1 for r in requests if not r.edit_full_tokens and edit_request(r.messages) is not None)
    full, diff = sum(r.edit_full_tokens for r in edits), sum(r.edit_diff_tokens for r in edits)
    everything = Switches(True, True, True, True, True)
    budget = context_budget(SMALL, {})
    cold, warm = [], []
    for request in requests:  # nothing seen before: every message of every request is parsed
        find_units.cache_clear()
        clear_block_cache()
        cold.append(_timed(lambda r=request: reduce_messages(r.messages, everything, budget_tokens=budget)))
    find_units.cache_clear()
    clear_block_cache()
    for request in requests:  # a live session: the history was parsed when the previous turns went through
        warm.append(_timed(lambda r=request: reduce_messages(r.messages, everything, budget_tokens=budget)))
    return {
        "requests": len(requests),
        "baseline_prompt_tokens": total,
        "baseline_last_request_tokens": baseline[-1],
        "requests_over_32k_budget": over_window,
        "scenarios": rows,
        "diff_first": {
            "edit_requests": len(edits),
            "detected": detected,
            "flagged_non_edits": false_edits,
            "whole_file_answer_tokens": full,
            "unified_diff_answer_tokens": diff,
            "output_saved_pct": 100.0 * (full - diff) / full if full else 0.0,
            "instruction_tokens": estimate_tokens(DIFF_FIRST_INSTRUCTION),
        },
        "code_mode_instruction_tokens": estimate_tokens(CODE_MODE_INSTRUCTION),
        "reduce_ms": {"cold": _summary(cold), "warm": _summary(warm)},
    }


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def _summary(timings: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(timings), "max": max(timings)}


def render(data: dict[str, Any]) -> str:
    rows = [
        (
            row["scenario"],
            row["prompt_tokens"],
            row["saved_tokens"],
            f"{row['saved_pct']:.1f} %",
            row["last_request_tokens"],
            f"${row['saved_usd']:.3f}",
        )
        for row in data["scenarios"]
    ]
    diff = data["diff_first"]
    timing = data["reduce_ms"]
    return "\n".join(
        [
            "# Token reduction benchmark (`python -m bench.token_reduction`)",
            "",
            "A recorded-style Cursor chat session (`bench/fixtures/cursor_session.json`: 32 turns on this",
            "repository's cost math, rate limiter and resolver) is replayed the way the IDE sends it: every",
            "request carries Cursor's system prompt, the `<user_info>` and `<rules>` blocks, the attached files",
            "(current version) and the whole history, in which edit answers repeat the edited file. Each request",
            "goes through `routing.reduction` — the transforms the gateway runs per request — with one feature",
            "switched on at a time, then all together. Tokens are the gateway's estimate (4 characters a token);",
            f"dollars at the seeded sonnet-4.5 input price (${INPUT_PRICE:g} per million). Savings are net: the "
            "code-mode and",
            "diff-first instructions add prompt tokens and count negative.",
            "",
            f"Baseline: {data['requests']} requests, {data['baseline_prompt_tokens']:,} prompt tokens in all, "
            f"{data['baseline_last_request_tokens']:,} in the last request; "
            f"{data['requests_over_32k_budget']} requests exceed a 32k model's prompt budget.",
            "",
            report.table(["scenario", "prompt tokens", "saved", "saved %", "last request", "saved at $3/M"], rows),
            "",
            "## Diff-first (output side)",
            "",
            f"{diff['detected']} of {diff['edit_requests']} edit requests were recognised as edits of provided "
            f"code ({diff['flagged_non_edits']} other request(s) too: asking to fix a test is an edit the "
            "fixture does not record). Answering them with a unified "
            f"diff instead of the whole edited file takes {diff['unified_diff_answer_tokens']:,} instead of "
            f"{diff['whole_file_answer_tokens']:,} output tokens ({diff['output_saved_pct']:.0f} % fewer; output "
            f"tokens cost 5x input on sonnet-4.5), for {diff['instruction_tokens']} prompt tokens of instruction "
            "per edit request. Whether a model follows the instruction is not measured here (no model runs); "
            "the gateway records the saving per request only when the answer is a diff.",
            "",
            "## Cost of the transforms",
            "",
            "All features on, 32k budget, per request: "
            f"{timing['cold']['p50']:.2f} ms median ({timing['cold']['max']:.2f} ms max) when no message was "
            f"seen before, {timing['warm']['p50']:.2f} ms median ({timing['warm']['max']:.2f} ms max) in a live "
            "session replayed in order, where only the new messages are parsed (parses are cached per text). Pure "
            "Python on this machine; a request only pays it when a reduction switch is on. Code mode adds "
            f"{data['code_mode_instruction_tokens']} prompt tokens per request; its benefit (fewer broken "
            "answers and retries) is not measurable without a model.",
            "",
            "## Reading the numbers",
            "",
            "- IDE boilerplate: Cursor repeats `<user_info>` and `<rules>` in every user message; all but the",
            "  first copy are stripped. The first copy stays, so the model still reads every instruction once.",
            "- File de-duplication: the attached file is resent every turn and edit answers repeat it; a copy",
            "  identical to one earlier in the same request becomes a one-line reference to that message. A",
            "  changed file is sent again in full.",
            "- Context trimming only acts when a request exceeds the target model's window (here the 32k local",
            "  fallback); it drops whole old turns after de-duplication has done what it can. Alone it has to",
            f"  drop turns in {data['requests_over_32k_budget']} requests; with de-duplication and boilerplate "
            "stripping on,",
            "  every request of this session fits the 32k window whole, so nothing is dropped (the two `all`",
            "  rows are equal).",
            "- Seed 002 claims 30-50 % (file dedupe) and 20-30 % (boilerplate) savings; this session's numbers",
            "  above are what this implementation measures on this fixture, not a general promise.",
            "",
            report.provenance_line(),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixture", type=Path, default=FIXTURE)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks-token-reduction.md")
    args = parser.parse_args(argv)
    session = json.loads(args.fixture.read_text(encoding="utf-8"))
    data = measure(replay(session))
    markdown = render(data)
    report.write("token_reduction", data, markdown)
    if not args.no_doc:
        DOC.write_text(markdown + "\n", encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()

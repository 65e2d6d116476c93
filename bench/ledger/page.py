"""The fault run's section of ``docs/benchmarks-billing.md`` (between markers, so ``bench.billing`` keeps it)."""

from __future__ import annotations

from decimal import Decimal

from bench import docs, procs, report
from bench.ledger.check import Balance
from bench.ledger.load import summary
from bench.ledger.run import RunResult

DOC = procs.BASE_DIR / "docs" / "benchmarks-billing.md"
SECTION = "ledger"  # <!-- ledger:start --> ... <!-- ledger:end --> (bench.docs.replace_section)


def _cents(usd: Decimal) -> str:
    return f"{usd * 100:.6f}"


def markdown(result: RunResult, balance: Balance, *, requests: int, concurrency: int) -> list[str]:
    """The page section: what was sent, which faults, and whether (and how) the ledger balanced."""
    ends = summary(result.outcomes)
    kinds = sorted(ends)
    return [
        f"Re-run: `.venv/bin/python -m bench.ledger --requests {requests} --concurrency {concurrency}` "
        "(`make test` runs the same suite with 120 requests: `tests/billing/test_fault_ledger.py`).",
        "",
        f"{len(result.outcomes):,} mixed requests over two gateway processes ({concurrency} in flight), "
        f"then {len(result.spooled_outcomes)} answers finished while Redis was down; {result.seconds:.0f} s in all.",
        "",
        report.table(
            ["Kind", "How they ended"],
            [[kind, ", ".join(f"{end}: {n}" for end, n in sorted(ends[kind].items()))] for kind in kinds],
        ),
        "",
        "Faults injected:",
        "",
        report.table(
            ["Fault", "Lasted (s)", "Detail"], [[f.name, f"{f.seconds:.2f}", f.detail or ""] for f in result.faults]
        ),
        "",
        "The ledger afterwards (mock upstream's own record of tokens served, priced by the model table):",
        "",
        report.table(
            ["Figure", "Value"],
            [
                ["Upstream calls the mock served", balance.upstream_calls],
                ["Requests that made them", balance.requests_with_calls],
                ["Usage events of the run", balance.events],
                ["Events billed exactly (mock tokens × prices)", balance.exact_events],
                ["Ledger for those calls (US cents)", _cents(balance.ledger_usd)],
                ["Billed for those calls (US cents)", _cents(balance.billed_usd)],
                ["Calls cut short by the client (live streams), billed by estimate", balance.estimated_events],
                ["Billed by estimate (US cents)", _cents(balance.estimated_usd)],
                [
                    "Requests in flight on the SIGKILLed gateway, billed by estimate by the reaper",
                    balance.reaped_events,
                ],
                ["Billed for them by estimate (US cents)", _cents(balance.reaped_usd)],
                ["Of those, killed before their call reached the upstream", balance.reaped_without_call],
                ["Cache hits (no upstream call, no cost)", balance.cache_hit_events],
                ["Calls with no event", len(balance.missing)],
                ["Calls with more than one event", len(balance.duplicates)],
                ["Events whose cost differs from the ledger", len(balance.cost_mismatches)],
                ["Events charging for calls never served", len(balance.unbacked)],
                ["Events for unauthenticated requests", balance.unauthenticated_events],
                ["Hours whose rollups differ from raw events", len(balance.rollup_mismatches)],
                ["Dead letters", balance.dead_letters],
                [
                    "Budgeted key: spent / budget (US cents)",
                    f"{_cents(balance.budget_spent_usd)} / {_cents(balance.budget_usd)}",
                ],
                ["Balanced", "yes" if balance.balanced else "**no**"],
            ],
        ),
        "",
        "Not exact by design: a live stream whose client leaves is cancelled upstream and billed from the "
        "provider's usage if it arrived, else estimated from the streamed text. A request in flight on a "
        "gateway process that is SIGKILLed is billed by the in-flight reaper: its prompt estimate at the input "
        "price, no completion tokens (status 499, `gateway_lost`). No call may be without an event.",
        "",
        f"{report.provenance_line()} Raw results: `docs/results/billing_faults.json`.",
    ]


def write_section(lines: list[str]) -> None:
    """Put the run's figures into their section of the billing page (added under a heading the first time)."""
    if f"<!-- {SECTION}:start -->" not in DOC.read_text(encoding="utf-8"):
        with open(DOC, "a", encoding="utf-8") as page:
            page.write("\n## Fault injection: does the ledger balance? — `python -m bench.ledger`\n")
    docs.replace_section(DOC, SECTION, lines)

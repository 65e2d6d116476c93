"""Every published number is generated: each benchmark page names its command, and generated
pages carry the commit and machine of the run whose raw results are committed beside them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
DOCS = BASE_DIR / "docs"
# Pages their command writes whole, from a run whose raw results are in docs/results/<name>.json.
GENERATED = {
    "benchmarks-routing.md": "routing",
    "benchmarks-token-reduction.md": "token_reduction",
    "benchmarks-reports.md": "reports",
    "benchmarks-billing.md": "billing",
    "scaling.md": "scaling",
}
PROVENANCE = re.compile(
    r"_Generated from the run at commit `([0-9a-f]{7,40}(?:\+dirty)?)` on (\d{4}-\d\d-\d\d \d\d:\d\d UTC)"
)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_every_benchmark_page_names_the_command_that_regenerates_it(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    assert re.search(r"`(?:\.venv/bin/)?python -m bench\.[a-z_.]+|`make bench", text), page


@pytest.mark.parametrize(("page", "name"), sorted(GENERATED.items()))
def test_a_generated_page_matches_its_committed_raw_results(page, name):
    match = PROVENANCE.search((DOCS / page).read_text(encoding="utf-8"))
    assert match, f"{page} has no provenance line: re-run its command"
    raw = json.loads((DOCS / "results" / f"{name}.json").read_text(encoding="utf-8"))
    assert raw["provenance"]["commit"] == match.group(1)
    assert raw["provenance"]["ran_at"] == match.group(2)


# Strings that used to be printed whatever the run measured (issue 19, item 10).
FIXED_CLAIMS = ["Redis 6.2", "PostgreSQL 18 with its default", "saves ~17 %", "queries (8)", "400,000 for 90 days"]


@pytest.mark.parametrize("claim", FIXED_CLAIMS)
def test_no_bench_script_prints_a_fixed_measurement(claim):
    offenders = [str(p.relative_to(BASE_DIR)) for p in (BASE_DIR / "bench").rglob("*.py") if claim in p.read_text()]
    assert offenders == []

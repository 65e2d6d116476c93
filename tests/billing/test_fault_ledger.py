"""The billing fault-injection suite: the ledger balances after Redis, the drainer, PostgreSQL and a gateway fail.

A modest mixed load (``bench.ledger.load``: JSON, streams, cascades, cache hits,
clients that leave, 401s, poison bodies) goes over two gateway processes while
``bench.ledger.run`` SIGKILLs and restarts Redis, SIGKILLs the drainer mid-batch,
stops PostgreSQL (``pg_ctl stop -m immediate``) while the drainer holds a batch,
SIGKILLs a gateway mid-stream, and kills Redis again during a spool replay.
``bench.ledger.check`` then compares the usage events with the mock upstream's
own ledger. The run has its own embedded PostgreSQL (it is stopped: the test
session's must not be), so it runs as ``python -m bench.ledger`` in a child
process; ``python -m bench.ledger`` without ``--no-write`` runs a bigger load and
writes the figures into docs/benchmarks-billing.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    var_dir = tmp_path_factory.mktemp("ledger")
    result = var_dir / "result.json"
    args = ["--requests", "120", "--concurrency", "8", "--no-write", "--var-dir", str(var_dir)]
    run = subprocess.run(
        [sys.executable, "-m", "bench.ledger", *args, "--result-file", str(result)],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=860,
        check=False,
    )
    assert result.exists(), f"the fault run failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    return json.loads(result.read_text())


def details(figures: dict, prefix: str) -> list[str]:
    return [f["detail"] for f in figures["faults"] if f["name"].startswith(prefix)]


def test_every_fault_was_injected_where_it_hurts(figures):
    assert details(figures, "drainer") == ["mid-batch"]
    assert details(figures, "PostgreSQL stopped") == ["mid-batch"]  # the drainer held a batch
    assert details(figures, "gateway") == ["mid-stream"]
    assert [f["detail"] for f in figures["faults"] if "spool replay" in f["name"]] == ["during replay"]


def test_the_ledger_balances_after_every_fault(figures):
    balance = figures["balance"]
    assert balance["missing"] == [] and balance["duplicates"] == []  # one event per upstream call, none lost
    assert balance["cost_mismatches"] == [] and balance["unbacked"] == []
    assert Decimal(balance["ledger_usd"]) == Decimal(balance["billed_usd"]) > 0  # prices x mock's ledger
    assert balance["exact_events"] > balance["estimated_events"] + balance["reaped_events"]
    assert balance["reaped_events"] >= 1  # the stream in flight on the killed gateway, billed by estimate
    assert Decimal(balance["budget_spent_usd"]) <= Decimal(balance["budget_usd"])  # never overshot
    assert balance["rollup_mismatches"] == []  # rollups equal the raw events
    assert balance["dead_letters"] == 0  # poison bodies are normalised, not dead-lettered
    assert balance["unauthenticated_events"] == 0
    assert figures["balanced"]

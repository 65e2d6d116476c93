"""The billing fault-injection suite: the ledger balances after Redis, the drainer, PostgreSQL and a gateway fail.

A modest mixed load (``bench.ledger.load``: JSON, streams, cascades, cache hits,
clients that leave, 401s, poison bodies) goes over two gateway processes while
``bench.ledger.run`` SIGKILLs and restarts Redis, SIGKILLs the drainer mid-batch,
cuts the drainer off PostgreSQL, SIGKILLs a gateway mid-stream, and kills Redis
again during a spool replay. ``bench.ledger.check`` then compares the usage events
with the mock upstream's own ledger. ``python -m bench.ledger`` runs a bigger load
and writes the figures into docs/benchmarks-billing.md.
"""

from __future__ import annotations

import pytest

from bench.ledger.check import check
from bench.ledger.rig import running
from bench.ledger.run import run
from bench.ledger.world import create_world
from tests import conftest

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.timeout(400)]


@pytest.fixture
def rig(tmp_path, django_db_setup):
    with running(tmp_path, conftest.test_database_url()) as rig:  # its Redis stopped however the test ends
        yield rig


def test_the_ledger_balances_after_every_fault(rig):
    world = create_world(rig.mock_url)
    result = run(rig, world, requests=120, concurrency=8)
    balance = check(result, world, mock_url=rig.mock_url, redis_url=rig.redis_url)

    assert [f.detail for f in result.faults if f.name.startswith("drainer")] == ["mid-batch"]
    assert [f.detail for f in result.faults if f.name.startswith("gateway")] == ["mid-stream"]
    assert [f.detail for f in result.faults if "spool replay" in f.name] == ["during replay"]
    assert balance.missing == [] and balance.duplicates == []  # one event per upstream call
    assert balance.cost_mismatches == [] and balance.unbacked == []
    assert balance.ledger_usd == balance.billed_usd > 0  # the price table applied to the mock's ledger
    assert balance.exact_events > balance.estimated_events
    assert balance.budget_spent_usd <= balance.budget_usd  # never overshot
    assert balance.rollup_mismatches == []  # rollups equal the raw events
    assert balance.dead_letters == 0  # poison bodies are normalised, not dead-lettered
    assert balance.unauthenticated_events == 0
    assert balance.balanced

"""``python -m bench.ledger``: the billing fault-injection run at a bigger load, figures into the billing page.

Fresh embedded PostgreSQL (``bench.stack``: the run stops and restarts it), then
``bench.ledger``'s own Redis, mock upstream, two gateways and drainer; the faults
of ``bench.ledger.run``; the balance of ``bench.ledger.check``. Writes
``docs/results/billing_faults.json`` and the section of ``docs/benchmarks-billing.md``
between its markers (the rest of the page is ``python -m bench.billing``'s);
``--no-write`` writes neither, ``--result-file`` the figures as JSON (the fault test).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

from bench import report, stack
from bench.ledger.check import check
from bench.ledger.load import summary
from bench.ledger.page import markdown, write_section
from bench.ledger.rig import running
from bench.ledger.run import run
from bench.ledger.world import create_world

VAR_DIR = stack.VAR_DIR.parent / "bench-ledger"
# Beside VAR_DIR, not in it: VAR_DIR is wiped first, which would hide a Redis an interrupted run left from the rig.
RIG_DIR = stack.VAR_DIR.parent / "bench-ledger-rig"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--var-dir", type=Path, help="where the run's servers live (default: var/bench-ledger*)")
    parser.add_argument("--result-file", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    var_dir = args.var_dir / "backing" if args.var_dir else VAR_DIR
    rig_dir = args.var_dir / "rig" if args.var_dir else RIG_DIR
    with (
        stack.backing_services(var_dir) as backing,
        running(rig_dir, backing.env["DATABASE_URL"], var_dir / "pg") as rig,
    ):
        world = create_world(rig.mock_url)
        result = run(rig, world, requests=args.requests, concurrency=args.concurrency)
        balance = check(result, world, mock_url=rig.mock_url, redis_url=rig.redis_url)
    lines = markdown(result, balance, requests=args.requests, concurrency=args.concurrency)
    print("\n".join(lines))
    kinds = {kind: dict(Counter(ends)) for kind, ends in summary(result.outcomes).items()}
    figures = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "outcomes": kinds,
        "faults": [asdict(f) for f in result.faults],
        "balance": {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(balance).items()},
        "balanced": balance.balanced,
    }
    if args.result_file:
        args.result_file.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if not args.no_write:
        report.write("billing_faults", figures, "\n".join(lines))
        write_section(lines)
    sys.exit(0 if balance.balanced else 1)


if __name__ == "__main__":
    main()

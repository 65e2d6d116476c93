"""``python -m bench.ledger``: the billing fault-injection run at a bigger load, figures into the billing page.

Fresh embedded PostgreSQL (``bench.stack``), then ``bench.ledger``'s own Redis,
mock upstream, two gateways and drainer; the faults of ``bench.ledger.run``; the
balance of ``bench.ledger.check``. Writes ``docs/results/billing_faults.json`` and
the section of ``docs/benchmarks-billing.md`` between its markers (the rest of the
page is ``python -m bench.billing``'s).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import asdict
from decimal import Decimal

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
    args = parser.parse_args()
    with stack.backing_services(VAR_DIR) as backing, running(RIG_DIR, backing.env["DATABASE_URL"]) as rig:
        world = create_world(rig.mock_url)
        result = run(rig, world, requests=args.requests, concurrency=args.concurrency)
        balance = check(result, world, mock_url=rig.mock_url, redis_url=rig.redis_url)
    lines = markdown(result, balance, requests=args.requests, concurrency=args.concurrency)
    print("\n".join(lines))
    kinds = {kind: dict(Counter(ends)) for kind, ends in summary(result.outcomes).items()}
    report.write(
        "billing_faults",
        {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "outcomes": kinds,
            "faults": [asdict(f) for f in result.faults],
            "balance": {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(balance).items()},
        },
        "\n".join(lines),
    )
    if not args.no_write:
        write_section(lines)
    sys.exit(0 if balance.balanced else 1)


if __name__ == "__main__":
    main()

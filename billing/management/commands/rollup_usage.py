"""``rollup_usage --from DATE [--to DATE]``: recompute hour and day rollups of a range (backfills, late events)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from billing.rollups import rollup_range


class Command(BaseCommand):
    help = "Recompute usage rollups for every hour and tenant-local day of the UTC dates FROM..TO (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True, help="First UTC date.")
        parser.add_argument("--to", dest="last", type=date.fromisoformat, help="Last UTC date (default: --from).")

    def handle(self, *args: Any, **options: Any) -> None:
        first: date = options["first"]
        last: date = options["last"] or first
        start = datetime.combine(first, time(), tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
        rows = rollup_range(start=start, end=end)
        self.stdout.write(f"{rows} rollup rows written for {first}..{last}")

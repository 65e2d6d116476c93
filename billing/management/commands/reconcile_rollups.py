"""``reconcile_rollups --from DATE [--to DATE]``: prove that hour rollups equal the raw usage events."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.rollups import rollups_reconcile


class Command(BaseCommand):
    help = "Compare every UTC hour's usage events with its hour rollups (requests and cost); exit 1 on a difference."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True, help="First UTC date.")
        parser.add_argument("--to", dest="last", type=date.fromisoformat, help="Last UTC date (default: --from).")

    def handle(self, *args: Any, **options: Any) -> None:
        first: date = options["first"]
        last: date = options["last"] or first
        start = datetime.combine(first, time(), tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
        mismatches = rollups_reconcile(start=start, end=end)
        for m in mismatches:
            self.stderr.write(
                f"{m.hour.isoformat()}: {m.events} events / {m.event_cost} USD, "
                f"rolled up {m.rolled_up} / {m.rolled_up_cost} USD"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} hours differ; run rollup_usage for them", returncode=1)
        self.stdout.write(f"rollups equal the raw events for {first}..{last}")

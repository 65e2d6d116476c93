"""``reap_in_flight [--list]``: bill by estimate the requests in flight on gateway processes that died."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from billing import inflight


class Command(BaseCommand):
    help = (
        "Bill by estimate (status 499, gateway_lost) every in-flight request whose gateway process died "
        "(the reap-in-flight beat task does this every 15 s); --list only shows in-flight records per process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list", action="store_true", help="Only list in-flight records per gateway process.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for owner, count in sorted(inflight.in_flight().items()):
                self.stdout.write(f"{owner}: {count} in flight")
            return
        reaped = inflight.reap()
        self.stdout.write(
            f"{len(reaped.billed)} billed by estimate, {len(reaped.already_billed)} already billed, "
            f"{reaped.skipped} settled meanwhile, {reaped.unreadable} unreadable, "
            f"{reaped.owners_removed} dead processes forgotten"
        )
        for request_id in reaped.billed:
            self.stdout.write(f"  billed {request_id}")

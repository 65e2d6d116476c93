"""``usage_dead_letters [list|redrive|discard] [ID ...]``: inspect and re-drive refused usage records."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import deadletter
from gateway_platform.redis_clients import sync_client


class Command(BaseCommand):
    help = (
        "List the usage records the drain could not store (the dead-letter stream), re-drive them after a fix "
        "(stored ones leave the stream), or discard them for good."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", choices=("list", "redrive", "discard"), default="list")
        parser.add_argument("ids", nargs="*", help="Dead-letter ids (default for list/redrive: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        client = sync_client()
        ids: list[str] = options["ids"]
        action: str = options["action"]
        if action == "list":
            letters = deadletter.entries(client, ids=ids or None)
            for letter in letters:
                self.stdout.write(f"{letter.id}\t{letter.at}\t{letter.request_id or '-'}\t{letter.error}")
            self.stdout.write(f"{deadletter.depth(client)} dead-lettered usage records")
        elif action == "redrive":
            result = deadletter.redrive(client, ids=ids or None)
            for entry_id, error in result.failed.items():
                self.stderr.write(f"{entry_id}\tstill refused: {error}")
            self.stdout.write(f"{len(result.landed)} stored, {len(result.failed)} still refused")
            if result.failed:
                raise CommandError("some records are still refused", returncode=1)
        else:
            if not ids:
                raise CommandError("discard needs the ids to delete (see `usage_dead_letters list`)")
            self.stdout.write(f"{deadletter.discard(client, ids)} discarded")

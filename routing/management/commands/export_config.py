"""``manage.py export_config [-o FILE]``: the current configuration as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.config_file import config_export


class Command(BaseCommand):
    help = "Print the gateway configuration as YAML in the import_config schema (or write it with -o)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        text = config_export()
        output: str | None = options["output"]
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc}") from exc
        self.stdout.write(f"Exported the configuration to {output}")

"""``manage.py import_config FILE.yaml``: apply a gateway config file (upserts by name)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.config_file import ConfigError, config_import


class Command(BaseCommand):
    help = (
        "Import a gateway config file (YAML): providers, models, routing tiers and fallback are created or "
        "updated by name in one transaction; server/caching/mcp/security are stored for later. "
        "Use - to read standard input."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the YAML file, or - for standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        source: str = options["file"]
        if source == "-":
            text = (options.get("stdin") or sys.stdin).read()
            source = "<stdin>"
        else:
            try:
                text = Path(source).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {source}: {exc}") from exc
        try:
            report = config_import(text=text, source=source)
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.summary_lines(verbose=options["verbosity"] > 1):
            self.stdout.write(line)

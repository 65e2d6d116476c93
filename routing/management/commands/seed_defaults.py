"""``manage.py seed_defaults``: create the bundled default providers, models, tiers and skills if missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from routing.config_file import ConfigError, config_seed_defaults
from routing.skills import skills_seed_defaults


class Command(BaseCommand):
    help = (
        "Import routing/defaults/gateway-config.yaml and routing/defaults/skills.yaml, creating only what "
        "does not exist yet: rows edited in the admin are never overwritten. Safe to run on every start."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = config_seed_defaults()
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.summary_lines(verbose=options["verbosity"] > 1):
            self.stdout.write(line)
        for line in skills_seed_defaults().summary_lines():
            self.stdout.write(line)

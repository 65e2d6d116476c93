"""``manage.py export_trajectories [--since DATE] [--tenant SLUG] [-o FILE]``: cascade outcomes as JSONL."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from routing.trajectories import trajectories
from tenants.models import Tenant


def parse_since(value: str) -> datetime:
    """An ISO date (midnight, current time zone) or date-time."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: not a date or date-time: {value!r} (use YYYY-MM-DD[THH:MM])")
        moment = datetime.combine(day, time.min)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Write cascade routing outcomes as JSON lines (seed 003 trajectory export) for threshold calibration."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", metavar="DATE", help="only outcomes from this date or date-time on")
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant's outcomes")
        parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_since(options["since"]) if options["since"] else None
        tenant_id = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant with slug {options['tenant']!r}")
            tenant_id = tenant.pk
        lines = (orjson.dumps(line) for line in trajectories(since=since, tenant_id=tenant_id))
        output: str | None = options["output"]
        if output is None:
            for line in lines:
                self.stdout.write(line.decode())
            return
        count = 0
        try:
            with open(output, "wb") as sink:
                for line in lines:
                    sink.write(line + b"\n")
                    count += 1
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc}") from exc
        self.stdout.write(f"Exported {count} outcomes to {output}")

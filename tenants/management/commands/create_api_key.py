"""``create_api_key``: create a key (and its tenant/team if missing); print only the secret."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug

from tenants import services


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


BUDGET_STEP = Decimal("0.0001")


def _budget(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(value) from None
    # Budgets are stored to 1/100 of a cent: a smaller positive amount would be stored as $0.
    if not amount.is_finite() or amount.quantize(BUDGET_STEP) <= 0:
        raise ValueError(value)
    return amount


class Command(BaseCommand):
    help = "Create an API key for TENANT/TEAM (created if missing) and print its secret on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--team", required=True, help="Team slug.")
        parser.add_argument("--name", required=True, help="A name for the key.")
        parser.add_argument("--models", nargs="*", default=[], metavar="M", help="Allowed models/tiers (default: all).")
        parser.add_argument("--budget-usd", type=_budget, help="Monthly budget for this key, in USD.")
        parser.add_argument("--rpm", type=_positive_int, help="Requests per minute.")
        parser.add_argument("--tpm", type=_positive_int, help="Tokens per minute.")

    def handle(self, *args: Any, **options: Any) -> None:
        for field in ("tenant", "team"):
            try:
                validate_slug(options[field])
            except ValidationError:
                raise CommandError(f"--{field} must be a slug (letters, digits, '-' and '_').") from None
        team = services.team_get_or_create(tenant_slug=options["tenant"], team_slug=options["team"])
        issued = services.api_key_create(
            team=team,
            name=options["name"],
            allowed_models=options["models"],
            rpm_limit=options["rpm"],
            tpm_limit=options["tpm"],
            budget_usd=options["budget_usd"],
        )
        self.stdout.write(issued.secret)

"""What a request may cost, which budgets it must fit, and the refusal it gets (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from billing.budgets import (
    BudgetClaim,
    budget_exceeded,
    claims_for,
    fitting_max_tokens,
    max_cost_usd,
    settled_amounts,
    usd_to_nano,
)
from billing.limits import BudgetInfo
from billing.periods import period_containing
from providers.adapters.base import Deployment, ProviderConfig
from providers.adapters.tokens import prompt_token_bound

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
PROVIDER = ProviderConfig(1, "p", "openai", "http://x/v1", None, 1, 1, 1, 1)


def deployment(name: str, input_price: str, output_price: str) -> Deployment:
    return Deployment(1, name, name, PROVIDER, Decimal(input_price), Decimal(output_price), 8000, None)


def budget(**fields: object) -> BudgetInfo:
    values: dict[str, object] = {
        "id": 7,
        "scope": "key",
        "scope_id": 3,
        "label": "API key 'laptop'",
        "amount_usd": Decimal("1.00"),
        "period": "monthly",
        "action": "block",
        "timezone": "Europe/Berlin",
    }
    values.update(fields)
    return BudgetInfo(**values)  # type: ignore[arg-type]


BIG = deployment("big", "3", "15")
SMALL = deployment("small", "0.5", "1")


def test_the_maximum_cost_uses_the_priciest_prices_of_the_route():
    assert max_cost_usd([SMALL, BIG], 1000, 100) == Decimal("0.0045")


def test_a_cascade_reserves_both_legs():
    [claim] = claims_for([budget()], [[SMALL], [BIG]], prompt_tokens=1000, output_tokens=100, now=NOW)
    assert claim.amount == usd_to_nano(Decimal("0.0006") + Decimal("0.0045"))


def test_a_per_model_budget_applies_only_when_that_model_may_serve():
    per_model = budget(model="big")
    assert claims_for([per_model], [[SMALL]], prompt_tokens=10, output_tokens=10, now=NOW) == []
    [claim] = claims_for([per_model], [[SMALL, BIG]], prompt_tokens=1000, output_tokens=0, now=NOW)
    assert claim.amount == usd_to_nano(Decimal("0.003"))  # only what it would cost on "big"


def test_claims_carry_the_period_in_the_budget_time_zone():
    [claim] = claims_for([budget()], [[SMALL]], prompt_tokens=1, output_tokens=1, now=NOW)
    assert claim.period == period_containing("monthly", "Europe/Berlin", NOW)
    assert claim.key == f"bud:7:{claim.period.stamp}"
    assert claim.cap == 1_000_000_000


def test_settlement_rounds_up_and_skips_per_model_budgets_of_other_models():
    claims = [
        BudgetClaim(budget(), period_containing("total", "UTC", NOW), 5),
        BudgetClaim(budget(model="big"), period_containing("total", "UTC", NOW), 5),
    ]
    assert settled_amounts(claims, Decimal("0.0000000011"), "small") == [2, 0]
    assert settled_amounts(claims, Decimal(0), "big") == [0, 0]


def test_the_prompt_bound_is_at_least_the_utf8_bytes_of_the_text():
    text = "ünïcödé " * 50
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    assert prompt_token_bound(body) >= len(text.encode())


def test_it_says_which_max_tokens_would_fit():
    claim = BudgetClaim(budget(), period_containing("monthly", "Europe/Berlin", NOW), 10)
    # 0.01 USD left; prompt of 1000 tokens costs 0.003 on BIG; 15 USD/M output: 0.007 / 0.000015 = 466 tokens.
    assert fitting_max_tokens(claim, usd_to_nano(Decimal("0.01")), [[BIG]], 1000, 1) == 466
    assert fitting_max_tokens(claim, usd_to_nano(Decimal("0.01")), [[BIG]], 1000, 2) == 233
    assert fitting_max_tokens(claim, usd_to_nano(Decimal("0.002")), [[BIG]], 1000, 1) == 0


def test_the_refusal_names_the_budget_its_reset_what_remains_and_what_would_fit():
    period = period_containing("monthly", "Europe/Berlin", NOW)
    claim = BudgetClaim(budget(), period, usd_to_nano(Decimal("0.05")))
    err = budget_exceeded(
        claim,
        settled=usd_to_nano(Decimal("0.99")),
        reserved=0,
        fits_max_tokens=120,
        asked_max_tokens=4096,
        now=NOW,
    )
    assert err.status == 429 and err.type == "insufficient_quota" and err.code == "budget_exceeded"
    assert "monthly budget of API key 'laptop' (1.00 USD)" in err.message
    assert "0.010000 USD left" in err.message
    assert "resets at 2026-12-01 00:00 Europe/Berlin (2026-11-30 23:00 UTC)" in err.message
    assert "max_tokens of at most 120 would fit" in err.message
    assert int(err.headers["Retry-After"]) == int((period.end - NOW).total_seconds())


def test_a_refusal_caused_by_requests_in_flight_says_so_and_retries_soon():
    claim = BudgetClaim(budget(period="total"), period_containing("total", "UTC", NOW), usd_to_nano(Decimal("0.5")))
    err = budget_exceeded(
        claim, settled=0, reserved=usd_to_nano(Decimal("0.8")), fits_max_tokens=0, asked_max_tokens=10, now=NOW
    )
    assert "requests in flight hold 0.800000 USD" in err.message
    assert "resets" not in err.message and "max_tokens" not in err.message
    assert err.headers["Retry-After"] == "1"

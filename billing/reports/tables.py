"""Report tables: one value per cell, formatted once for HTML and once for CSV from the same number.

Every table a page shows is a :class:`Table`; the CSV export of that page writes the very same
object, so the two can never disagree (a test compares them). Money has four decimals in both
(per-request costs are fractions of a cent; budgets, set in dollars, have cents); shares are
percentages with one decimal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from billing.reports.budgets import BudgetBurn
from billing.reports.queries import Group, Measures

Kind = Literal["text", "int", "usd", "usd2", "pct", "date"]
USD_PLACES = Decimal("0.0001")
CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Kind = "text"
    bar: bool = False  # draw a share bar beside the percentage
    wide: bool = False  # a name column that should not be squeezed

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "usd", "usd2", "pct")


@dataclass(frozen=True)
class Cell:
    """A value as the page shows it (``text``) and as the CSV writes it (``csv``)."""

    text: str
    csv: str
    numeric: bool = False
    bar: float | None = None  # 0..1, drawn beside shares
    tone: str = ""  # shown as a badge: ok, warn, danger
    wide: bool = False


def make_cell(kind: Kind, value: object) -> Cell:
    """Format ``value`` of ``kind`` for both outputs (``None`` is an empty cell)."""
    if value is None:
        return Cell("–", "", numeric=kind != "text")
    if kind == "int":
        number = int(value)  # type: ignore[call-overload]
        return Cell(f"{number:,}", str(number), numeric=True)
    if kind in ("usd", "usd2"):
        places = USD_PLACES if kind == "usd" else CENTS
        amount = Decimal(value).quantize(places, rounding=ROUND_HALF_UP)  # type: ignore[arg-type]
        return Cell(f"{amount:,}", str(amount), numeric=True)
    if kind == "pct":
        ratio = float(value)  # type: ignore[arg-type]
        percent = f"{ratio * 100:.1f}"
        return Cell(f"{percent} %", percent, numeric=True)
    if kind == "date":
        return Cell(value.isoformat() if isinstance(value, date) else str(value), str(value))
    return Cell(str(value), csv_text(str(value)))


def usd_text(amount: Decimal) -> str:
    """Money for headline figures: cents, or four decimals below one dollar (LLM costs are small)."""
    places = Decimal("0.01") if abs(amount) >= 1 or amount == 0 else USD_PLACES
    return f"${amount.quantize(places, rounding=ROUND_HALF_UP):,}"


def pct_text(ratio: float) -> str:
    return f"{ratio * 100:.1f} %"


def csv_text(text: str) -> str:
    """Text a spreadsheet will not run as a formula (key and team names are user input)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass
class Row:
    cells: list[Cell]
    kind: str = ""  # "subtotal" rows are emphasised


@dataclass
class Table:
    """A captioned table with an optional totals row; ``slug`` names its CSV export."""

    slug: str
    caption: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    footer: Row | None = None

    def _cells(self, values: dict[str, object]) -> list[Cell]:
        cells = []
        for column in self.columns:
            cell = make_cell(column.kind, values.get(column.key))
            if column.bar and isinstance(values.get(column.key), float):
                cell = replace(cell, bar=max(0.0, min(float(values[column.key]), 1.0)))  # type: ignore[arg-type]
            if column.wide:
                cell = replace(cell, wide=True)
            cells.append(cell)
        return cells

    def add(self, values: dict[str, object], kind: str = "") -> None:
        self.rows.append(Row(self._cells(values), kind))

    def set_footer(self, values: dict[str, object]) -> None:
        self.footer = Row([make_cell(c.kind, values.get(c.key)) for c in self.columns], "total")  # no bars

    def csv_rows(self) -> list[list[str]]:
        """Header, rows and the totals row, as the CSV writes them."""
        rows = [[c.label for c in self.columns]]
        rows += [[cell.csv for cell in row.cells] for row in self.rows]
        if self.footer is not None:
            rows.append([cell.csv for cell in self.footer.cells])
        return rows


def _measures(m: Measures) -> dict[str, object]:
    return {
        "requests": m.requests,
        "errors": m.errors,
        "error_rate": m.error_rate,
        "prompt_tokens": m.prompt_tokens,
        "completion_tokens": m.completion_tokens,
        "tokens": m.tokens,
        "cache_hits": m.cache_hits,
        "cache_hit_rate": m.cache_hit_rate,
        "cost": m.cost_usd,
        "saved": m.saved_usd,
    }


DIMENSION_LABELS = {
    "tenant": "Tenant",
    "team": "Team",
    "api_key": "Key",
    "model": "Model",
    "provider": "Provider",
    "tier": "Tier",
}
DETAIL_LABELS = {"tenant": "Slug", "team": "Tenant", "api_key": "Team"}


def breakdown_table(slug: str, caption: str, dimension: str, groups: list[Group], total: Measures) -> Table:
    """Spend per value of one dimension with its share of the total cost."""
    columns = [Column("label", DIMENSION_LABELS[dimension], wide=True)]
    if dimension in DETAIL_LABELS:
        columns.append(Column("detail", DETAIL_LABELS[dimension]))
    columns += [
        Column("requests", "Requests", "int"),
        Column("errors", "Errors", "int"),
        Column("prompt_tokens", "Prompt tokens", "int"),
        Column("completion_tokens", "Completion tokens", "int"),
        Column("cache_hits", "Cache hits", "int"),
        Column("cost", "Cost (USD)", "usd"),
        Column("saved", "Saved (USD)", "usd"),
        Column("share", "Share of cost", "pct", bar=True),
    ]
    table = Table(slug, caption, columns)
    for group in groups:
        table.add({"label": group.label, "detail": group.detail, "share": group.share, **_measures(group.measures)})
    table.set_footer({"label": "Total", **_measures(total), "share": 1.0 if total.cost_usd else 0.0})
    return table


def top_keys_table(slug: str, limit: int, groups: list[Group]) -> Table:
    """The ``limit`` most expensive keys, with their error and cache hit rates."""
    table = Table(
        slug,
        f"Top {limit} keys by cost",
        [
            Column("rank", "#", "int"),
            Column("label", "Key", wide=True),
            Column("detail", "Team"),
            Column("requests", "Requests", "int"),
            Column("error_rate", "Error rate", "pct"),
            Column("cache_hit_rate", "Cache hit rate", "pct"),
            Column("tokens", "Tokens", "int"),
            Column("cost", "Cost (USD)", "usd"),
            Column("share", "Share of cost", "pct", bar=True),
        ],
    )
    for rank, group in enumerate(groups, start=1):
        table.add(
            {
                "rank": rank,
                "label": group.label,
                "detail": group.detail,
                "share": group.share,
                **_measures(group.measures),
            }
        )
    return table


def daily_table(days: list[tuple[date, Measures]], total: Measures) -> Table:
    """Spend per local day (the chart's data, also as a table for screen readers and CSV)."""
    table = Table(
        "daily",
        "Spend per day",
        [
            Column("day", "Date", "date"),
            Column("requests", "Requests", "int"),
            Column("tokens", "Tokens", "int"),
            Column("cache_hits", "Cache hits", "int"),
            Column("cost", "Cost (USD)", "usd"),
            Column("saved", "Saved (USD)", "usd"),
        ],
    )
    for day, measures in days:
        table.add({"day": day, **_measures(measures)})
    table.set_footer({"day": "Total", **_measures(total)})
    return table


def savings_by_mechanism(total: Measures) -> list[tuple[str, Decimal]]:
    """USD saved per mechanism, in the order reports show them."""
    return [
        ("Exact cache", total.saved_by_cache_usd - total.saved_by_semantic_cache_usd),
        ("Semantic cache", total.saved_by_semantic_cache_usd),
        ("Routing (vs. baseline tier)", total.saved_by_routing_usd),
        ("Token reduction", total.saved_by_reduction_usd),
        ("Provider prompt caching", total.saved_by_prompt_cache_usd),
    ]


def savings_table(total: Measures) -> Table:
    """USD saved by the cache, by routing (vs. the baseline tier), by token reduction and by provider prompt caching."""
    table = Table(
        "savings",
        "Savings",
        [
            Column("source", "Source", wide=True),
            Column("saved", "Saved (USD)", "usd"),
            Column("share", "Share of savings", "pct"),
        ],
    )
    saved = total.saved_usd
    for source, amount in savings_by_mechanism(total):
        table.add({"source": source, "saved": amount, "share": float(amount / saved) if saved else 0.0})
    table.set_footer({"source": "Total", "saved": saved, "share": 1.0 if saved else 0.0})
    return table


STATE_LABELS = {
    "ok": "On track",
    "warning": "Over 80 %",
    "projected_over": "Projected over",
    "exhausted": "Exhausted",
}
STATE_TONES = {"ok": "ok", "warning": "warn", "projected_over": "warn", "exhausted": "danger"}


def _action(burn: BudgetBurn) -> str:
    budget = burn.budget
    if budget.action == budget.Action.DOWNGRADE and budget.downgrade_tier:
        return f"Downgrade to {budget.downgrade_tier}"
    return budget.get_action_display()


def budgets_table(burns: list[BudgetBurn]) -> Table:
    """Each budget's spend this period, what is left, and the projection to the period's end."""
    table = Table(
        "budgets",
        "Budgets this period",
        [
            Column("level", "Budget on"),
            Column("scope", "Name", wide=True),
            Column("period", "Period"),
            Column("action", "At limit"),
            Column("amount", "Amount (USD)", "usd2"),
            Column("spent", "Spent (USD)", "usd2"),
            Column("remaining", "Remaining (USD)", "usd2"),
            Column("used", "Used", "pct", bar=True),
            Column("projected", "Projected (USD)", "usd2"),
            Column("state", "State"),
            Column("runs_out", "Runs out", "date"),
        ],
    )
    state_index = [c.key for c in table.columns].index("state")
    for b in burns:
        runs_out = None
        if b.runs_out is not None and (b.period_end is None or b.runs_out < b.period_end):  # within this period
            runs_out = b.runs_out.astimezone(b.budget_tz).date()
        table.add(
            {
                "level": b.level,
                "scope": b.scope,
                "period": b.budget.get_period_display(),
                "action": _action(b),
                "amount": b.amount,
                "spent": b.spent,
                "remaining": b.remaining,
                "used": b.used,
                "projected": b.projected,
                "state": STATE_LABELS[b.state],
                "runs_out": runs_out,
            }
        )
        cells = table.rows[-1].cells
        cells[state_index] = replace(cells[state_index], tone=STATE_TONES[b.state])
    return table


def statement_table(teams: list[tuple[Group, list[Group]]], total: Measures) -> Table:
    """Statement line items: per team its models, then the team's subtotal."""
    table = Table(
        "statement",
        "Line items by team and model",
        [
            Column("team", "Team"),
            Column("model", "Model"),
            Column("requests", "Requests", "int"),
            Column("prompt_tokens", "Prompt tokens", "int"),
            Column("completion_tokens", "Completion tokens", "int"),
            Column("cost", "Cost (USD)", "usd"),
            Column("saved", "Saved (USD)", "usd"),
        ],
    )
    for team, lines in teams:
        for line in lines:
            table.add({"team": team.label, "model": line.label, **_measures(line.measures)})
        table.add({"team": team.label, "model": "Subtotal", **_measures(team.measures)}, kind="subtotal")
    table.set_footer({"team": "Total", "model": "", **_measures(total)})
    return table

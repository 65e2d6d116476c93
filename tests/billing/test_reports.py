"""The usage and billing reports (`/reports/`): scoping, numbers, CSV, statement, filters, projection."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.db.models.functions import TruncDay
from django.test import Client
from django.utils import timezone

from billing.models import Budget, UsageRollup
from billing.reports import budgets, periods
from tenants.models import Membership, Tenant, TenantRole
from tests.factories import make_key, make_team

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
MARCH = "start=2026-03-01&end=2026-03-31"
G = UsageRollup.Granularity
DIMS = ("tenant_id", "team_id", "api_key_id", "model", "provider", "tier")
MEASURES = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cache_hits",
    "saved_by_cache_usd",
    "saved_by_routing_usd",
    "saved_by_reduction_usd",
    "tokens_saved",
)
FILTERED_PAGES = ["", "teams/", "keys/", "models/", "providers/", "tiers/", "top-keys/", "budgets/"]


def hour_row(key, hour: datetime, *, cost: str = "0.5", model: str = "sonnet-4.5", **fields: object) -> UsageRollup:
    """An (unsaved) hour row for ``key``, as the rollup task writes them."""
    values: dict[str, object] = dict(
        provider="anthropic",
        tier="code_gen",
        requests=10,
        errors=1,
        prompt_tokens=1000,
        completion_tokens=200,
        cache_hits=2,
        saved_by_cache_usd=Decimal("0.1"),
        saved_by_routing_usd=Decimal("0.05"),
        saved_by_reduction_usd=Decimal("0.01"),
        tokens_saved=50,
    )
    values.update(fields)
    return UsageRollup(
        granularity=G.HOUR,
        period_start=hour,
        tenant=key.team.tenant,
        team=key.team,
        api_key=key,
        model=model,
        cost_usd=Decimal(cost),
        **values,
    )


def add_usage(key, hour: datetime, **fields: object) -> None:
    hour_row(key, hour, **fields).save()


def close_days(before: datetime, *, utc_days: bool = False) -> None:
    """Write day rows summing the hour rows of each day before ``before``, as the nightly task does.

    Day rows start at the tenant's local midnight (``billing.rollups``), or at UTC midnight with
    ``utc_days`` (rows rolled up before a tenant changed its time zone).
    """
    for tenant in Tenant.objects.all():
        tz = UTC if utc_days else ZoneInfo(tenant.timezone)
        hours = UsageRollup.objects.filter(granularity=G.HOUR, tenant=tenant, period_start__lt=before)
        rows = hours.annotate(day=TruncDay("period_start", tzinfo=tz)).values("day", *DIMS)
        UsageRollup.objects.bulk_create(
            UsageRollup(
                granularity=G.DAY,
                period_start=row["day"],
                **{d: row[d] for d in DIMS},
                **{m: row[f"s_{m}"] for m in MEASURES},
            )
            for row in rows.annotate(**{f"s_{m}": Sum(m) for m in MEASURES})
            if row["day"] + timedelta(days=1) <= before  # days not over yet stay open
        )


@pytest.fixture
def world():
    web, data = make_team("acme", "web"), make_team("acme", "data")
    acme = web.tenant
    acme.name, acme.timezone = "Acme Corp", "Europe/Berlin"
    acme.save()
    globex_team = make_team("globex", "ops")
    manager = get_user_model().objects
    # No passwords: the tests log in with force_login, and hashing five passwords per test is slow.
    users = {name: manager.create_user(name) for name in ("admin", "finance", "member", "outsider")}
    users["root"] = manager.create_superuser("root", email=None, password=None)
    TenantRole.objects.create(tenant=acme, user=users["admin"], role=TenantRole.Role.ADMIN)
    TenantRole.objects.create(tenant=acme, user=users["finance"], role=TenantRole.Role.FINANCE)
    Membership.objects.create(team=web, user=users["member"], role=Membership.Role.OWNER)
    keys = {"web": make_key(web)[0], "data": make_key(data)[0], "globex": make_key(globex_team)[0]}
    return {"acme": acme, "globex": globex_team.tenant, "users": users, "keys": keys, "web": web, "data": data}


@pytest.fixture
def march(world):
    """Usage every 5th hour from 28 Feb to 2 April 2026 (both month edges and Berlin's DST change).

    Days up to 29 March are closed (UTC day rows written); later days exist as hour rows only.
    """
    keys = world["keys"]
    first = datetime(2026, 2, 28, 20, tzinfo=UTC)
    rows = []
    for i in range(0, 24 * 33, 5):
        hour = first + timedelta(hours=i)
        rows.append(hour_row(keys["web"], hour, cost="0.25"))
        rows.append(
            hour_row(keys["data"], hour, cost="0.125", model="deepseek-v3", provider="deepseek", tier="simple_ops")
        )
        rows.append(hour_row(keys["globex"], hour, cost="9"))
    UsageRollup.objects.bulk_create(rows)
    close_days(datetime(2026, 3, 30, tzinfo=UTC))
    return world


def hourly_truth(tenant, lo: datetime, hi: datetime, **filters: object) -> dict[str, Decimal | int]:
    """The sums straight from the hour rows: what every report must show."""
    rows = UsageRollup.objects.filter(granularity=G.HOUR, tenant=tenant, period_start__gte=lo, period_start__lt=hi)
    return rows.filter(**filters).aggregate(**{m: Sum(m) for m in MEASURES})


def march_truth(world, **filters: object) -> dict[str, Decimal | int]:
    lo, hi = datetime(2026, 3, 1, tzinfo=BERLIN), datetime(2026, 4, 1, tzinfo=BERLIN)
    return hourly_truth(world["acme"], lo, hi, **filters)


def as_user(world, name: str) -> Client:
    client = Client()
    client.force_login(world["users"][name])
    return client


class TableParser(HTMLParser):
    """Every ``<table aria-labelledby="table-SLUG">`` as rows of cell texts (head, body, totals)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        label = dict(attrs).get("aria-labelledby") or ""
        if tag == "table" and label.startswith("table-"):
            self._table = self.tables.setdefault(label.removeprefix("table-"), [])
        elif self._table is not None and tag == "tr":
            self._table.append([])
        elif self._table is not None and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page_tables(html: str) -> dict[str, list[list[str]]]:
    parser = TableParser()
    parser.feed(html)
    return parser.tables


def as_csv_text(cell: str) -> str:
    """A table cell as the CSV writes it: no thousands separators, no percent sign, no dash for none."""
    return "" if cell == "–" else cell.replace(",", "").removesuffix(" %")


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [*FILTERED_PAGES, "csv/daily/", "statement/acme/2026-03/", "statement/acme/2026-03/csv/"]
)
def test_it_redirects_anonymous_users_to_login(client, world, path):
    response = client.get(f"/reports/{path}")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/reports/")


@pytest.mark.parametrize("name", ["outsider", "member"])
@pytest.mark.parametrize("path", [*FILTERED_PAGES, "csv/daily/", "csv/by-teams/"])
def test_it_forbids_users_without_a_tenant_role(march, name, path):
    assert as_user(march, name).get(f"/reports/{path}").status_code == 403


@pytest.mark.parametrize("name", ["outsider", "member", "admin", "finance"])
def test_it_hides_statements_of_tenants_out_of_reach(march, name):
    client = as_user(march, name)
    assert client.get("/reports/statement/globex/2026-03/").status_code == 404
    assert client.get("/reports/statement/globex/2026-03/csv/").status_code == 404


@pytest.mark.parametrize("name", ["admin", "finance"])
@pytest.mark.parametrize("path", FILTERED_PAGES)
def test_each_page_shows_only_the_users_tenant(march, name, path):
    response = as_user(march, name).get(f"/reports/{path}?{MARCH}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Corp" in html
    assert march["keys"]["globex"].name not in html
    assert "globex" not in html
    assert '<form method="post"' not in html.split("<main", 1)[1]  # read-only: no write forms on the page


@pytest.mark.parametrize("name", ["admin", "finance"])
def test_breakdowns_name_the_users_keys_teams_and_models(march, name):
    client = as_user(march, name)
    assert march["keys"]["web"].name in client.get(f"/reports/keys/?{MARCH}").content.decode()
    teams = client.get(f"/reports/teams/?{MARCH}").content.decode()
    assert "web" in teams and "data" in teams
    assert "deepseek-v3" in client.get(f"/reports/models/?{MARCH}").content.decode()


@pytest.mark.parametrize(
    "query",
    ["tenant=globex", "team={globex_team}", "tenant=acme&team={globex_team}", "tenant=no-such-tenant", "team=999999"],
)
def test_it_refuses_filters_naming_other_tenants(march, query):
    globex_team = march["keys"]["globex"].team_id
    response = as_user(march, "admin").get(f"/reports/?{query.format(globex_team=globex_team)}&{MARCH}")
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert "9.0000" not in response.content.decode()  # globex's hourly cost never shows
    csv_response = as_user(march, "admin").get(f"/reports/csv/by-keys/?{query.format(globex_team=globex_team)}")
    assert csv_response.status_code == 400


def test_a_superuser_sees_every_tenant_and_the_tenants_table(march):
    response = as_user(march, "root").get(f"/reports/?{MARCH}")
    assert response.status_code == 200
    tables = page_tables(response.content.decode())
    assert {row[0] for row in tables["by-tenants"][1:-1]} == {"Acme Corp", "globex"}
    response = as_user(march, "root").get(f"/reports/?tenant=globex&{MARCH}")
    tables = page_tables(response.content.decode())
    assert "by-tenants" not in tables
    assert [row[2] for row in tables["top-5-keys"][1:]] == ["ops"]


# --- numbers --------------------------------------------------------------------------------------


def test_totals_count_each_hour_once_across_day_and_hour_rows(march):
    """March in Berlin: ragged UTC edges, a 23-hour DST day, closed days and open days."""
    response = as_user(march, "finance").get(f"/reports/?{MARCH}")
    tables = page_tables(response.content.decode())
    truth = march_truth(march)
    total_row = tables["daily"][-1]
    assert total_row[0] == "Total"
    assert Decimal(as_csv_text(total_row[4])) == truth["cost_usd"]
    assert int(as_csv_text(total_row[1])) == truth["requests"]
    saved = truth["saved_by_cache_usd"] + truth["saved_by_routing_usd"] + truth["saved_by_reduction_usd"]
    assert Decimal(as_csv_text(tables["savings"][-1][1])) == saved


def test_each_day_of_the_daily_table_matches_the_hours_of_that_local_day(march):
    # Acme's day rows are UTC days; a local day's numbers come from hour rows where they do not line up,
    # so only the closed days far from the month edges are fully covered by single day rows. All days
    # must sum correctly anyway: the daily table's total and the per-day rows for days that are hours only.
    response = as_user(march, "finance").get(f"/reports/?{MARCH}")
    daily = {row[0]: row for row in page_tables(response.content.decode())["daily"][1:-1]}
    assert len(daily) == 31
    day = date(2026, 3, 31)  # not closed: hour rows only, in local time
    lo = periods.local_midnight(day, BERLIN)
    truth = hourly_truth(march["acme"], lo, lo + timedelta(days=1))
    assert Decimal(as_csv_text(daily["2026-03-31"][4])) == truth["cost_usd"]


def test_team_filter_narrows_every_number(march):
    team = march["web"]
    response = as_user(march, "admin").get(f"/reports/models/?team={team.pk}&{MARCH}")
    assert response.status_code == 200
    rows = page_tables(response.content.decode())["by-models"]
    assert [row[0] for row in rows[1:-1]] == ["sonnet-4.5"]
    assert Decimal(as_csv_text(rows[-1][6])) == march_truth(march, team=team)["cost_usd"]


@pytest.mark.parametrize(
    ("path", "slugs"),
    [
        ("", ["daily", "savings", "top-5-keys"]),
        ("teams/", ["by-teams"]),
        ("keys/", ["by-keys"]),
        ("models/", ["by-models"]),
        ("providers/", ["by-providers"]),
        ("tiers/", ["by-tiers"]),
        ("top-keys/", ["top-keys"]),
        ("budgets/", ["budgets"]),
    ],
)
def test_csv_exports_match_the_tables_on_the_page(march, path, slugs):
    Budget.objects.create(tenant=march["acme"], amount_usd=Decimal("100"))
    Budget.objects.create(api_key=march["keys"]["web"], amount_usd=Decimal("5"), period=Budget.Period.DAILY)
    client = as_user(march, "finance")
    tables = page_tables(client.get(f"/reports/{path}?{MARCH}").content.decode())
    for slug in slugs:
        exported = client.get(f"/reports/csv/{slug}/?tenant=acme&{MARCH}")
        assert exported.status_code == 200
        assert exported["Content-Type"].startswith("text/csv")
        assert len(tables[slug]) > 1, slug
        assert [[as_csv_text(cell) for cell in row] for row in tables[slug]] == csv_rows(exported), slug


def test_csv_export_defuses_spreadsheet_formulas(march):
    key = march["keys"]["web"]
    key.name = "=HYPERLINK(1)"
    key.save()
    rows = csv_rows(as_user(march, "admin").get(f"/reports/csv/by-keys/?{MARCH}"))
    assert any(row[0].startswith("'=HYPERLINK") for row in rows)


# --- statement ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "finance", "root"])
def test_the_monthly_statement_lists_teams_and_models_with_totals(march, name):
    response = as_user(march, name).get("/reports/statement/acme/2026-03/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Corp" in html and "March 2026" in html and "Final" in html
    lines = page_tables(html)["statement"]
    assert lines[0] == ["Team", "Model", "Requests", "Prompt tokens", "Completion tokens", "Cost (USD)", "Saved (USD)"]
    assert {(row[0], row[1]) for row in lines[1:-1]} >= {("web", "sonnet-4.5"), ("data", "deepseek-v3")}
    assert Decimal(as_csv_text(lines[-1][5])) == march_truth(march)["cost_usd"]
    for team in (march["web"], march["data"]):
        subtotal = next(row for row in lines if row[0] == team.name and row[1] == "Subtotal")
        assert Decimal(as_csv_text(subtotal[5])) == march_truth(march, team=team)["cost_usd"]
    exported = as_user(march, name).get("/reports/statement/acme/2026-03/csv/")
    assert [[as_csv_text(c) for c in row] for row in lines] == csv_rows(exported)
    savings = as_user(march, name).get("/reports/statement/acme/2026-03/csv/?table=savings")
    assert [[as_csv_text(c) for c in row] for row in page_tables(html)["savings"]] == csv_rows(savings)


def test_statement_urls_validate_the_month(march):
    client = as_user(march, "admin")
    assert client.get("/reports/statement/acme/2026-13/").status_code == 404
    assert client.get("/reports/statement/acme/1999-12/").status_code == 404
    assert client.get("/reports/statement/?tenant=acme&month=2026-03")["Location"] == "/reports/statement/acme/2026-03/"
    assert client.get("/reports/statement/?tenant=acme&month=garbage")["Location"] == "/reports/"
    # Values the statement URL cannot hold were a NoReverseMatch (500): now a redirect and a 404.
    assert client.get("/reports/statement/?tenant=acme&month=2026-3")["Location"] == "/reports/statement/acme/2026-03/"
    assert client.get("/reports/statement/?tenant=a.b&month=2026-03").status_code == 404
    assert client.get("/reports/statement/?tenant=globex&month=2026-03").status_code == 404


def test_the_current_months_statement_is_provisional(world):
    now = timezone.now()
    add_usage(world["keys"]["web"], now.replace(minute=0, second=0, microsecond=0))
    month = now.astimezone(BERLIN).strftime("%Y-%m")
    html = as_user(world, "admin").get(f"/reports/statement/acme/{month}/").content.decode()
    assert "Provisional" in html


# --- filters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "start=2026-13-01",
        "start=yesterday",
        "end=2026-02-30",
        "start=2026-03-10&end=2026-03-01",
        "start=2020-01-01&end=2026-01-01",
        "start=9999-12-31&end=9999-12-31",
        "start=0001-01-01",
    ],
)
def test_bad_dates_are_form_errors_not_500s(march, query):
    for path in ("", "teams/", "budgets/"):
        response = as_user(march, "admin").get(f"/reports/{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert 'class="errorlist"' in response.content.decode()
    assert as_user(march, "admin").get(f"/reports/csv/daily/?{query}").status_code == 400


def test_default_range_is_the_current_month_in_the_tenants_time_zone(world):
    now = timezone.now()
    add_usage(world["keys"]["web"], now.replace(minute=0, second=0, microsecond=0), cost="1.5")
    response = as_user(world, "admin").get("/reports/")
    assert response.status_code == 200
    scope = response.context["scope"]
    today = now.astimezone(BERLIN).date()
    assert (scope.range.first, scope.range.last, scope.tz) == (today.replace(day=1), today, BERLIN)
    assert response.context["stats"][0]["value"] == "$1.50"


def test_the_overview_runs_a_fixed_number_of_queries(march, django_assert_max_num_queries):
    client = as_user(march, "admin")
    client.get(f"/reports/?{MARCH}")  # warm the session
    # session, user, tenants, teams (form choices), closed days, daily (and totals), top keys, key names
    with django_assert_max_num_queries(8):
        assert client.get(f"/reports/?{MARCH}").status_code == 200


# --- budgets and projection -----------------------------------------------------------------------------


def test_linear_projection_math():
    week = timedelta(days=7)
    assert budgets.project_linear(Decimal("10"), timedelta(days=10), timedelta(days=30)) == Decimal("30.0000")
    assert budgets.project_linear(Decimal("10"), timedelta(0), week) == Decimal("10")
    assert budgets.project_linear(Decimal("7"), week * 2, week) == Decimal("7.0000")  # never past the end
    assert budgets.project_linear(Decimal("1"), timedelta(hours=36), timedelta(days=3)) == Decimal("2.0000")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert budgets.runs_out_at(Decimal("10"), Decimal("30"), start, start + timedelta(days=10)) == start + timedelta(
        days=30
    )
    assert budgets.runs_out_at(Decimal("0"), Decimal("30"), start, start + timedelta(days=10)) is None
    days = [date(2026, 4, d) for d in range(1, 31)]
    down = budgets.burn_down(
        [(d, Decimal("2")) for d in days], date(2026, 4, 3), timedelta(days=3), timedelta(days=30), Decimal("50")
    )
    assert down.cumulative == [Decimal("2"), Decimal("4"), Decimal("6")]
    assert down.projected_total == Decimal("60.0000")


def test_budget_page_shows_spend_this_period_and_the_projection(world):
    now = timezone.now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    add_usage(world["keys"]["web"], this_hour, cost="3")
    add_usage(world["keys"]["data"], this_hour, cost="1")
    add_usage(world["keys"]["globex"], this_hour, cost="50")
    Budget.objects.create(tenant=world["acme"], amount_usd=Decimal("1000"))
    Budget.objects.create(
        team=world["web"], amount_usd=Decimal("2"), action=Budget.Action.DOWNGRADE, downgrade_tier="simple_ops"
    )
    Budget.objects.create(tenant=world["globex"], amount_usd=Decimal("1"))
    response = as_user(world, "finance").get("/reports/budgets/")
    assert response.status_code == 200
    rows = {(row[0], row[1]): row for row in page_tables(response.content.decode())["budgets"][1:]}
    assert set(rows) == {("Tenant", "Acme Corp"), ("Team", "web")}
    team, tenant = rows["Team", "web"], rows["Tenant", "Acme Corp"]
    assert team[3] == "Downgrade to simple_ops"
    assert (team[5], team[6], team[9]) == ("3.00", "0.00", "Exhausted")
    assert tenant[5] == "4.00"
    today = now.astimezone(BERLIN).date()
    month = periods.month_range(today.year, today.month, BERLIN)
    expected = budgets.project_linear(Decimal("4"), now - month.start, month.end - month.start)
    assert abs(Decimal(as_csv_text(tenant[8])) - expected) <= Decimal("0.01")
    assert "<svg" in response.content.decode()


def test_budget_page_asks_a_superuser_to_choose_a_tenant(march):
    response = as_user(march, "root").get("/reports/budgets/")
    assert response.status_code == 200
    assert "choose a tenant" in response.content.decode()
    assert as_user(march, "root").get("/reports/csv/budgets/").status_code == 400


# --- periods ----------------------------------------------------------------------------------------------


def test_gaps_are_what_day_rows_leave_uncovered():
    lo, hi = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)
    day = timedelta(days=1)
    covered = [(lo + day, lo + 2 * day), (lo + 2 * day, lo + 3 * day)]
    assert periods.gaps(lo, hi, covered) == [(lo, lo + day), (lo + 3 * day, hi)]
    assert periods.gaps(lo, hi, []) == [(lo, hi)]


def test_candidate_days_follow_the_local_calendar_across_dst():
    lo, hi = datetime(2026, 3, 28, tzinfo=BERLIN), datetime(2026, 3, 31, tzinfo=BERLIN)
    days = periods._candidates(BERLIN, lo, hi)
    local = [(a, b) for a, b in days if a.astimezone(BERLIN).hour == 0]
    assert [b - a for a, b in local] == [timedelta(hours=24), timedelta(hours=23), timedelta(hours=24)]
    assert all(b <= hi and a >= lo for a, b in days)  # UTC days only where wholly inside


def test_utc_aligned_day_rows_also_count_each_hour_once(world):
    keys = world["keys"]
    first = datetime(2026, 2, 27, tzinfo=UTC)
    UsageRollup.objects.bulk_create(
        hour_row(keys["web"], first + timedelta(hours=i), cost="0.25") for i in range(0, 24 * 35, 7)
    )
    close_days(datetime(2026, 3, 25, tzinfo=UTC), utc_days=True)
    assert UsageRollup.objects.filter(granularity=G.DAY).exists()
    response = as_user(world, "admin").get(f"/reports/?{MARCH}")
    total = page_tables(response.content.decode())["daily"][-1]
    assert Decimal(as_csv_text(total[4])) == march_truth(world)["cost_usd"]


# --- empty states -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*FILTERED_PAGES, "csv/daily/", "statement/"])
def test_a_superuser_on_a_fresh_install_gets_an_empty_report_with_next_steps(db, path):
    from tenants.models import Tenant

    assert not Tenant.objects.exists()
    root = get_user_model().objects.create_user("root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    response = client.get(f"/reports/{path}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing to report yet" in html
    assert 'href="/portal/teams/new/"' in html
    assert "create_api_key --tenant" in html


def test_a_user_without_a_role_is_told_whom_to_ask(march):
    response = as_user(march, "member").get("/reports/")
    assert response.status_code == 403
    assert "ask your platform admin" in response.content.decode()

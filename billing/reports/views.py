"""Report views: read-only GET pages; they validate the filters, build one report, and render.

Every page is limited to :func:`tenants.permissions.reportable_tenants`. With no tenant to
report on, a superuser (a fresh install) gets an empty report saying how to create one, anyone
else a 403 page saying who to ask; a statement of another tenant 404, a filter naming another
tenant's team or slug a form error (400).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from billing.reports import pages
from billing.reports.csv import csv_response
from billing.reports.forms import ReportFilterForm, ReportScope
from tenants.models import Tenant
from tenants.permissions import reportable_tenants


def _tenants(request: HttpRequest) -> list[Tenant]:
    tenants = list(reportable_tenants(request.user))
    if not tenants:
        raise _NoTenant
    return tenants


class _NoTenant(Exception):
    """The user has no tenant to report on (answered by :func:`_no_tenant`)."""


def _no_tenant(request: HttpRequest) -> HttpResponse:
    """The empty state: 200 with next steps for a superuser, 403 with who to ask for anyone else."""
    allowed = bool(getattr(request.user, "is_superuser", False))
    return render(request, "reports/empty.html", {"allowed": allowed}, status=200 if allowed else 403)


def _answers_empty(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer :class:`_NoTenant` from ``view`` with the empty state."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except _NoTenant:
            return _no_tenant(request)

    return wrapper


def _render(
    request: HttpRequest, template: str, build: Callable[[pages.Report], dict[str, object]], **extra: object
) -> HttpResponse:
    """Validate the filters and render ``template`` with ``build``'s context (400 with errors if invalid)."""
    tenants = _tenants(request)
    now = timezone.now()
    form = ReportFilterForm(request.GET, tenants=tenants, now=now)
    context: dict[str, object] = {"form": form, "tenants": tenants, **extra}
    if not form.is_valid():
        return render(request, template, context, status=400)
    scope = form.scope()
    report = pages.Report(scope, now)
    context.update(
        scope=scope,
        query=scope.query_string(),
        presets=pages.presets(scope, now),
        **build(report),
    )
    return render(request, template, context)


@require_safe
@login_required
@_answers_empty
def overview(request: HttpRequest) -> HttpResponse:
    """Spend over time, totals, savings, cache hit rate and the top keys."""
    return _render(request, "reports/overview.html", pages.overview_context, section="overview")


@require_safe
@login_required
@_answers_empty
def breakdown(request: HttpRequest, segment: str) -> HttpResponse:
    """Spend by team, key, model, provider, tier or tenant, with shares of the total."""
    if segment not in pages.BREAKDOWNS:
        raise Http404("No such breakdown.")
    title = pages.BREAKDOWNS[segment][1]
    return _render(
        request,
        "reports/table_page.html",
        lambda report: {"table": report.breakdown_table(segment)},
        section=segment,
        title=title,
    )


@require_safe
@login_required
@_answers_empty
def top_keys(request: HttpRequest) -> HttpResponse:
    """The most expensive keys."""
    return _render(
        request,
        "reports/table_page.html",
        lambda report: {"table": report.top_keys_table()},
        section="top-keys",
        title="Top keys",
    )


@require_safe
@login_required
@_answers_empty
def budgets(request: HttpRequest) -> HttpResponse:
    """Budget burn-down this period and the month-end projection (one tenant at a time)."""
    return _render(
        request,
        "reports/budgets.html",
        lambda report: {"table": report.budgets_table(), "chart": report.burn_chart()},
        section="budgets",
        title="Budgets",
    )


@require_safe
@login_required
@_answers_empty
def export_csv(request: HttpRequest, table: str) -> HttpResponse:
    """Any table of the filtered pages as CSV, with the same filters and the same numbers."""
    if table not in pages.TABLES:
        raise Http404("No such table.")
    now = timezone.now()
    form = ReportFilterForm(request.GET, tenants=_tenants(request), now=now)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain; charset=utf-8")
    scope = form.scope()
    if table == "budgets" and scope.tenant is None:
        return HttpResponse("Choose a tenant.", status=400, content_type="text/plain; charset=utf-8")
    return csv_response(pages.TABLES[table](pages.Report(scope, now)), _filename(table, scope))


def _filename(table: str, scope: ReportScope) -> str:
    subject = scope.tenant.slug if scope.tenant else "all-tenants"
    if scope.team is not None:
        subject += f"-{scope.team.slug}"
    return f"{table}-{subject}-{scope.range.first.isoformat()}-{scope.range.last.isoformat()}.csv"


def _statement_tenant(request: HttpRequest, slug: str) -> Tenant:
    # Another tenant's statement is "not found", not "forbidden": its existence is not disclosed.
    return get_object_or_404(reportable_tenants(request.user), slug=slug)


def _month(value: str) -> tuple[int, int]:
    year, month = (int(part) for part in value.split("-"))
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        raise Http404("No such month.")
    return year, month


@require_safe
@login_required
@_answers_empty
def statement_index(request: HttpRequest) -> HttpResponse:
    """The statement picker's target: redirect to the canonical statement URL."""
    tenants = _tenants(request)
    slug = request.GET.get("tenant") or tenants[0].slug
    if slug not in {tenant.slug for tenant in tenants}:
        raise Http404("No such tenant.")  # also any value the statement URL could not even hold
    month = request.GET.get("month") or timezone.now().strftime("%Y-%m")
    try:
        year, month_number = _month(month)
    except (ValueError, Http404):
        messages.error(request, "Choose a month as YYYY-MM between 2000 and 2100.")
        return redirect("reports:overview")
    return redirect("reports:statement", tenant=slug, month=f"{year:04d}-{month_number:02d}")


@require_safe
@login_required
def statement(request: HttpRequest, tenant: str, month: str) -> HttpResponse:
    """The printable monthly statement of one tenant."""
    owner = _statement_tenant(request, tenant)
    year, month_number = _month(month)
    result = pages.statement(owner, year, month_number, timezone.now())
    context = {"statement": result, "summary": pages.summary(result.totals), "month": month}
    return render(request, "reports/statement.html", context)


@require_safe
@login_required
def statement_csv(request: HttpRequest, tenant: str, month: str) -> HttpResponse:
    """The statement's line items (or, with ``?table=savings``, its savings) as CSV."""
    owner = _statement_tenant(request, tenant)
    year, month_number = _month(month)
    result = pages.statement(owner, year, month_number, timezone.now())
    if request.GET.get("table") == "savings":
        return csv_response(result.savings, f"statement-savings-{owner.slug}-{month}.csv")
    return csv_response(result.lines, f"statement-{owner.slug}-{month}.csv")

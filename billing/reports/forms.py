"""The reports' filter form (GET): tenant, team and a date range, validated against the user's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import QuerySet
from django.http import QueryDict

from billing.models import UsageRollup
from billing.reports import periods
from tenants.models import Team, Tenant

MAX_RANGE_DAYS = 400
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: tenants (all the user may read, or one), an optional team, a range."""

    tenants: list[Tenant]
    tenant: Tenant | None
    team: Team | None
    range: periods.DateRange

    @property
    def tz(self) -> ZoneInfo:
        return self.range.tz

    @property
    def zones(self) -> dict[int, ZoneInfo]:
        return {t.pk: periods.zone(t.timezone) for t in self.tenants}

    def rollups(self, now: datetime | None = None) -> QuerySet[UsageRollup]:
        """Rollup rows covering the range (up to ``now`` if given) once, in this scope."""
        end = self.range.clipped_end(now) if now is not None else self.range.end
        rows = periods.covering_rollups(UsageRollup.objects.all(), self.zones, self.range.start, end)
        return rows.filter(team_id=self.team.pk) if self.team is not None else rows

    def query_string(self, **overrides: str) -> str:
        """This scope as GET parameters, for links and CSV exports."""
        params = QueryDict(mutable=True)
        if self.tenant is not None:
            params["tenant"] = self.tenant.slug
        if self.team is not None:
            params["team"] = str(self.team.pk)
        params["start"] = self.range.first.isoformat()
        params["end"] = self.range.last.isoformat()
        params.update(overrides)
        return params.urlencode()


def scope_zone(tenants: list[Tenant]) -> ZoneInfo:
    """The tenants' common time zone, or UTC when they differ (or there are none)."""
    names = {t.timezone for t in tenants}
    return periods.zone(names.pop()) if len(names) == 1 else ZoneInfo("UTC")


class ReportFilterForm(forms.Form):
    """Validates the filters; :meth:`scope` turns them into a :class:`ReportScope`.

    Choices come only from the tenants the user may read, so a guessed id or slug of another
    tenant is an invalid choice (a form error), never data.
    """

    tenant = forms.ChoiceField(required=False)  # slugs of the user's tenants, from the list already read
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="All teams")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")

    def __init__(self, data: object, *, tenants: list[Tenant], now: datetime) -> None:
        super().__init__(data)  # type: ignore[arg-type]
        self.tenants = tenants
        self.now = now
        self._by_slug = {t.slug: t for t in tenants}
        choices = [(t.slug, t.name) for t in tenants]
        self.fields["tenant"].choices = [("", "All my tenants"), *choices] if len(tenants) > 1 else choices  # type: ignore[attr-defined]
        # Offer only the teams of the chosen tenant when one is chosen (no JS needed).
        chosen = self._by_slug.get(str(self.data.get("tenant", ""))) if self.is_bound else None
        team_tenants = [chosen] if chosen else tenants
        team_field = self.fields["team"]
        team_field.queryset = Team.objects.filter(tenant__in=team_tenants).select_related("tenant")  # type: ignore[attr-defined]
        if len(team_tenants) > 1:
            team_field.label_from_instance = lambda team: f"{team.tenant.name} / {team.name}"  # type: ignore[attr-defined]

    def clean_tenant(self) -> Tenant | None:
        return self._by_slug.get(self.cleaned_data["tenant"])

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        tenant: Tenant | None = data.get("tenant")
        team: Team | None = data.get("team")
        if team is not None:
            if tenant is not None and team.tenant_id != tenant.pk:
                self.add_error("team", "This team does not belong to the selected tenant.")
                return data
            tenant = tenant or next(t for t in self.tenants if t.pk == team.tenant_id)
        if tenant is None and len(self.tenants) == 1:
            tenant = self.tenants[0]
        data["tenant"] = tenant
        scope_tenants = [tenant] if tenant is not None else self.tenants
        tz = scope_zone(scope_tenants)
        today = self.now.astimezone(tz).date()
        start: date | None = data.get("start")
        end: date | None = data.get("end")
        if "start" in self.errors or "end" in self.errors:
            return data
        if start is None and end is None:
            start, end = today.replace(day=1), today
        elif start is None:
            start = end.replace(day=1)  # type: ignore[union-attr]
        elif end is None:
            end = max(start, today)
        for name, value in (("start", start), ("end", end)):
            if not FIRST_YEAR <= value.year <= LAST_YEAR:  # type: ignore[union-attr]
                self.add_error(name, f"Choose a date between {FIRST_YEAR} and {LAST_YEAR}.")
        if self.errors:
            return data
        assert start is not None and end is not None
        if start > end:
            self.add_error("end", "The end date must not be before the start date.")
        elif end - start > timedelta(days=MAX_RANGE_DAYS):
            self.add_error("end", f"Choose a range of at most {MAX_RANGE_DAYS} days.")
        data["start"], data["end"] = start, end
        data["range"] = periods.DateRange(start, end, tz)
        data["scope_tenants"] = scope_tenants
        if not self.errors:
            # Show the range actually reported (the defaults too) when the form is rendered again.
            shown = QueryDict(mutable=True)
            shown.update(self.data)
            shown["start"], shown["end"] = start.isoformat(), end.isoformat()
            self.data = shown
        return data

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:  # point assistive technology at the message under the field
                attrs = self.fields[name].widget.attrs
                attrs.update({"aria-invalid": "true", "aria-describedby": f"id_{name}_errors"})

    def scope(self) -> ReportScope:
        """The validated scope; only after ``is_valid()``."""
        data = self.cleaned_data
        return ReportScope(tenants=data["scope_tenants"], tenant=data["tenant"], team=data["team"], range=data["range"])

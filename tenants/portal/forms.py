"""Portal forms: they validate against the team's limits; services do the writes."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Min, Q
from django.utils import timezone
from django.utils.text import slugify

from billing import periods
from billing.models import Budget
from tenants import permissions
from tenants.models import Membership, Team, Tenant
from tenants.portal import queries

GRACE_CHOICES = [
    ("0", "None — the old key stops working now"),
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
]
GRACE_PERIODS = {"0": timedelta(0), "1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


def team_limit(team: Team, field: str) -> int | None:
    """The tightest of the team's and the tenant's ``rpm_limit``/``tpm_limit`` (None when neither is set)."""
    limits = [int(value) for value in (getattr(team, field, None), getattr(team.tenant, field, None)) if value]
    return min(limits) if limits else None


def team_budget_cap(team: Team) -> Decimal | None:
    """The smallest budget set on the team (or its tenant): no key budget may exceed it."""
    cap = Budget.objects.filter(Q(team=team) | Q(tenant_id=team.tenant_id)).aggregate(cap=Min("amount_usd"))["cap"]
    return Decimal(cap) if cap is not None else None


class PortalForm(forms.Form):
    """Labels without Django's trailing colon, like the rest of the site."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's password change form, with the site's colon-free labels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class KeyFilterForm(PortalForm):
    """Search and filters of the key list (GET)."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": "Name or prefix"}),
    )
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any"), *queries.STATUS_CHOICES])
    owner = forms.TypedChoiceField(label="Owner", required=False, coerce=int, empty_value=None)

    def __init__(self, *args: Any, owners: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["owner"]).choices = [("", "Anyone"), *owners]


class KeyCreateForm(PortalForm):
    """A new key for a team: name, model access, expiry, budget and limits within the team's."""

    name = forms.CharField(max_length=200, help_text="What the key is for, e.g. “Laptop — Cursor”.")
    allowed_models = forms.MultipleChoiceField(
        label="Allowed models and tiers",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to allow everything the team may use.",
    )
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The key stops working at the end of this day. Empty: never expires.",
    )
    budget_usd = forms.DecimalField(
        label="Monthly budget (USD)",
        required=False,
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
    )
    rpm_limit = forms.IntegerField(label="Requests per minute", required=False, min_value=1)
    tpm_limit = forms.IntegerField(label="Tokens per minute", required=False, min_value=1)

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        self.choices = queries.model_choices(team)
        cast(forms.ChoiceField, self.fields["allowed_models"]).choices = self.choices
        self.budget_cap = team_budget_cap(team)
        if self.budget_cap is not None:
            self.fields["budget_usd"].widget.attrs["max"] = self.budget_cap
            self.fields["budget_usd"].validators.append(_max_validator(self.budget_cap, "the team's budget"))
            self.fields["budget_usd"].help_text = f"At most {self.budget_cap} (the team's budget)."
        for field in ("rpm_limit", "tpm_limit"):
            cap = team_limit(team, field)
            if cap is not None:
                self.fields[field].validators.append(_max_validator(cap, "the team's limit"))
                self.fields[field].widget.attrs["max"] = cap
                self.fields[field].help_text = f"At most {cap} (the team's limit). Empty: the team's limit."
            else:
                self.fields[field].help_text = "Empty: the gateway default."

    @property
    def tier_names(self) -> list[str]:
        return queries.tier_names(self.choices)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name

    def clean_expires_on(self) -> dt.date | None:
        day = self.cleaned_data["expires_on"]
        tz = queries.tenant_timezone(self.team.tenant)
        if day is not None and day < timezone.now().astimezone(tz).date():
            raise forms.ValidationError("Pick today or a day in the future.")
        return day

    def clean_allowed_models(self) -> list[str]:
        chosen: list[str] = self.cleaned_data["allowed_models"]
        team_allowed = list(getattr(self.team, "allowed_models", None) or [])
        # A team with its own allowed set must not hand out "everything" by an empty list.
        return chosen or team_allowed

    @property
    def expires_at(self) -> dt.datetime | None:
        """The end of the chosen day in the tenant's time zone."""
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return periods.day_bounds(day, self.team.tenant.timezone)[1]


def _max_validator(cap: Decimal | int, what: str) -> Any:
    def validate(value: Decimal | int | None) -> None:
        if value is not None and value > cap:
            raise forms.ValidationError(f"Must not exceed {what} ({cap}).")

    return validate


class KeyRotateForm(PortalForm):
    grace = forms.ChoiceField(
        label="Keep the old key working for",
        choices=GRACE_CHOICES,
        initial="1h",
        widget=forms.RadioSelect,
    )

    @property
    def grace_period(self) -> timedelta:
        return GRACE_PERIODS[self.cleaned_data["grace"]]


class MemberAddForm(PortalForm):
    """Add a person of the tenant to a team by username or e-mail address (``permissions.addable_users``)."""

    user = forms.CharField(label="Username or e-mail", max_length=254)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args: Any, team: Team, actor: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        self.actor = actor

    def clean_user(self) -> AbstractBaseUser:
        value = self.cleaned_data["user"].strip()
        people = permissions.addable_users(self.actor, [self.team.tenant_id])
        users = list(people.filter(Q(username__iexact=value) | Q(email__iexact=value))[:2])
        if len(users) != 1:
            # One message for "no one", "ambiguous" and "someone outside the tenant": nothing is revealed.
            raise forms.ValidationError(permissions.NOT_ADDABLE)
        if Membership.objects.filter(team=self.team, user=users[0]).exists():
            raise forms.ValidationError("That user is already a member of this team.")
        return users[0]


class MemberRoleForm(PortalForm):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class TeamCreateForm(PortalForm):
    """Start a team: in a tenant the user administers, or (superusers) in a new tenant."""

    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), required=False, empty_label="A new tenant…", label="Tenant"
    )
    tenant_name = forms.CharField(
        label="New tenant's name", max_length=200, required=False, help_text="Your organisation, e.g. “Acme”."
    )
    team_name = forms.CharField(label="Team name", max_length=200, help_text="e.g. “Web” or “Data science”.")

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_create_tenant = bool(getattr(user, "is_superuser", False))
        tenant_field = cast(forms.ModelChoiceField, self.fields["tenant"])
        tenant_field.queryset = permissions.administered_tenants(user).order_by("name")
        if not self.may_create_tenant:
            tenant_field.required = True
            tenant_field.empty_label = None
            del self.fields["tenant_name"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant, tenant_name = data.get("tenant"), (data.get("tenant_name") or "").strip()
        if tenant is None and self.may_create_tenant:
            if not slugify(tenant_name):
                self.add_error("tenant_name", "Name the new tenant (or pick an existing one).")
            elif Tenant.objects.filter(slug=slugify(tenant_name)).exists():
                self.add_error("tenant_name", "A tenant with this name exists: pick it in the list.")
        team_slug = slugify(data.get("team_name") or "")
        if "team_name" in data and not team_slug:
            self.add_error("team_name", "Use at least one letter or digit.")
        elif tenant is not None and Team.objects.filter(tenant=tenant, slug=team_slug).exists():
            self.add_error("team_name", "This tenant already has a team with this name.")
        data["tenant_name"] = tenant_name
        return data

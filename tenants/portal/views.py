"""Team self-service: teams, keys (create, rotate, revoke) and usage.

Views validate and call one service; every lookup goes through
``tenants.permissions`` so an id from another team is a 404, never a leak.
A new secret exists only in the response to the POST that created it: it is not
put in the session, in messages or in a log line, and that response is not cached.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from tenants import permissions, services
from tenants.audit import audit_log
from tenants.models import ApiKey, Team
from tenants.portal import forms, queries
from tenants.portal.snippets import client_snippets, default_model

logger = logging.getLogger(__name__)
VIA = "portal"

KEYS_PER_PAGE = 50


def team_or_404(user: AbstractBaseUser, team_id: int) -> Team:
    """A team the user can see; any other id is a 404 (no hint that it exists)."""
    return get_object_or_404(permissions.visible_teams(user).select_related("tenant"), pk=team_id)


def managed_key_or_404(user: AbstractBaseUser, key_id: int) -> ApiKey:
    """A key the user can see and manage; invisible keys are a 404, visible but not manageable a 403."""
    key = get_object_or_404(permissions.visible_keys(user).select_related("team__tenant"), pk=key_id)
    if not permissions.can_manage_key(user, key):
        raise PermissionDenied("You cannot change this key.")
    return key


def team_context(user: AbstractBaseUser, team: Team, section: str) -> dict[str, object]:
    """What every team page shows in its header and tabs."""
    return {
        "team": team,
        "section": section,
        "tenant_tz": queries.tenant_timezone(team.tenant),
        "can_manage_members": permissions.can_manage_team(user, team),
        "can_create_key": permissions.can_create_key(user, team),
    }


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    """The teams the user belongs to (or administers)."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    context = {"teams": queries.user_teams(user), "can_create_team": permissions.can_create_team(user)}
    return render(request, "portal/team_list.html", context)


@login_required
def key_list(request: HttpRequest, team_id: int) -> HttpResponse:
    """The team's keys the user may see, searchable and filterable, with spend and budget."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    team = team_or_404(user, team_id)
    since = queries.month_start(team.tenant)
    filters = forms.KeyFilterForm(request.GET or None, owners=queries.key_owners(user, team))
    criteria = filters.cleaned_data if filters.is_valid() else {}
    keys = queries.team_keys(
        user,
        team,
        since=since,
        search=criteria.get("q", ""),
        status=criteria.get("status", ""),
        owner_id=criteria.get("owner"),
    )
    page = Paginator(keys, KEYS_PER_PAGE).get_page(request.GET.get("page"))
    context = team_context(user, team, "keys") | {
        "filters": filters,
        "filtered": bool(criteria and any(criteria.values())),
        "page": page,
        "since": since,
    }
    return render(request, "portal/key_list.html", context)


@sensitive_variables("issued", "context")  # error reports must not carry the secret
def _secret_response(
    request: HttpRequest, issued: services.IssuedKey, *, tier_names: list[str], **extra: object
) -> HttpResponse:
    """The one page that ever shows the secret: rendered from the POST, never stored, never cached."""
    key = issued.api_key
    base_url = request.build_absolute_uri("/").rstrip("/")
    model = default_model(list(key.allowed_models), tier_names)
    context = team_context(request.user, key.team, "keys") | {  # type: ignore[arg-type]
        "key": key,
        "secret": issued.secret,
        "base_url": f"{base_url}/v1",
        "snippets": client_snippets(base_url=base_url, secret=issued.secret, model=model),
        **extra,
    }
    return render(request, "portal/key_secret.html", context)


@never_cache
@sensitive_variables("issued")
@login_required
@require_http_methods(["GET", "POST"])
def key_create(request: HttpRequest, team_id: int) -> HttpResponse:
    """Create a key for the team; the response to a valid POST shows the secret once."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    team = team_or_404(user, team_id)
    if not permissions.can_create_key(user, team):
        raise PermissionDenied("You cannot create keys for this team.")
    form = forms.KeyCreateForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        issued = services.api_key_create(
            team=team,
            name=data["name"],
            created_by=user,
            allowed_models=data["allowed_models"],
            expires_at=form.expires_at,
            rpm_limit=data["rpm_limit"],
            tpm_limit=data["tpm_limit"],
            budget_usd=data["budget_usd"],
        )
        logger.info(
            "API key created in the portal",
            extra={"key_id": issued.api_key.pk, "key_prefix": issued.api_key.prefix, "user_id": user.pk},
        )
        audit_log(user, issued.api_key, "add", f"Created the key ({issued.api_key.prefix}…).", via=VIA)
        return _secret_response(request, issued, tier_names=form.tier_names, action="created")
    return render(request, "portal/key_form.html", team_context(user, team, "keys") | {"form": form})


@never_cache
@sensitive_variables("issued")
@login_required
@require_http_methods(["GET", "POST"])
def key_rotate(request: HttpRequest, key_id: int) -> HttpResponse:
    """Replace a key by a new one with the same settings; the old one lives on for the grace period."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    key = managed_key_or_404(user, key_id)
    form = forms.KeyRotateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.api_key_rotate(api_key=key, grace=form.grace_period)
        except services.RotateError as exc:
            messages.error(request, str(exc))
            return redirect("portal:key_list", team_id=key.team_id)
        logger.info(
            "API key rotated in the portal",
            extra={"key_id": issued.api_key.pk, "old_key_id": key.pk, "team_id": key.team_id, "user_id": user.pk},
        )
        audit_log(user, issued.api_key, "add", f"Created by rotating key {key.pk} ({key.prefix}…).", via=VIA)
        audit_log(user, key, "change", f"Rotated: replaced by key {issued.api_key.pk}.", via=VIA)
        tiers = queries.tier_names(queries.model_choices(key.team))
        return _secret_response(request, issued, tier_names=tiers, action="rotated", old_key=key)
    return render(request, "portal/key_rotate.html", team_context(user, key.team, "keys") | {"key": key, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    """Confirm (GET) and revoke (POST) a key; the gateway refuses it from the next request on."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    key = managed_key_or_404(user, key_id)
    if request.method == "POST":
        services.api_key_revoke(api_key=key)
        logger.info("API key revoked in the portal", extra={"key_id": key.pk, "user_id": user.pk})
        audit_log(user, key, "change", "Revoked the key.", via=VIA)
        messages.success(request, f"The key “{key.name}” ({key.prefix}…) is revoked.")
        return redirect("portal:key_list", team_id=key.team_id)
    return render(request, "portal/key_revoke.html", team_context(user, key.team, "keys") | {"key": key})


@login_required
def usage(request: HttpRequest, team_id: int) -> HttpResponse:
    """This month's usage: the whole team's for its managers, the user's own keys' otherwise."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    team = team_or_404(user, team_id)
    summary = queries.usage_summary(user, team, since=queries.month_start(team.tenant))
    return render(request, "portal/usage.html", team_context(user, team, "usage") | {"summary": summary})


@login_required
@require_http_methods(["GET", "POST"])
def team_create(request: HttpRequest) -> HttpResponse:
    """Start a team (superusers may start its tenant too); the creator becomes its owner."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    if not permissions.can_create_team(user):
        raise PermissionDenied("Only tenant admins can start a team.")
    form = forms.TeamCreateForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        team = services.team_create(
            owner=user, team_name=data["team_name"], tenant=data["tenant"], tenant_name=data["tenant_name"]
        )
        logger.info("team created in the portal", extra={"team_id": team.pk, "user_id": user.pk})
        audit_log(user, team, "add", "Created the team.", via=VIA)
        messages.success(request, f"Team “{team.name}” created in {team.tenant.name}. Now create its first key.")
        return redirect("portal:key_create", team.pk)
    return render(request, "portal/team_form.html", {"form": form})

"""The landing page at ``/``: what this is, where everything lives, what to do next.

It answers for everyone: an anonymous visitor gets the links and the login; a
signed-in user also gets their teams and the shortest path to a first key. Provider
health is read from the latest probe rows (nothing is probed here).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from tenants import permissions


def provider_health() -> list[dict[str, str]]:
    """Each enabled provider with its kind and latest probe status (``unknown`` before the first)."""
    from providers.models import Provider, ProviderHealth

    rows = Provider.objects.filter(enabled=True).order_by("name").values_list("name", "kind", "health__status")
    return [
        {"name": name, "kind": kind, "status": status or ProviderHealth.Status.UNKNOWN} for name, kind, status in rows
    ]


def next_step(user: AbstractBaseUser, teams: list[object]) -> str:
    """What a signed-in user should do first: ``create-team``, ``create-key``, ``ask`` or ``use``."""
    if not teams:
        return "create-team" if permissions.can_create_team(user) else "ask"
    if not permissions.visible_keys(user).filter(revoked_at__isnull=True).exists():
        return "create-key"
    return "use"


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The landing page (public: it shows no tenant data to an anonymous visitor)."""
    from tenants.portal.queries import user_teams

    user = request.user
    context: dict[str, object] = {
        "base_url": request.build_absolute_uri("/v1").rstrip("/"),
        "providers": provider_health(),
        "probe_seconds": f"{settings.GATEWAY_HEALTH_PROBE_SECONDS:g}",
    }
    if user.is_authenticated:
        teams = list(user_teams(user)[:20])  # type: ignore[arg-type]
        context.update(teams=teams, next_step=next_step(user, teams))  # type: ignore[arg-type]
    return render(request, "home.html", context)

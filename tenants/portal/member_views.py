"""Team members: everyone in a team sees who is in it; owners and tenant admins change it."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from tenants import permissions, services
from tenants.audit import audit_log
from tenants.models import Membership
from tenants.portal import forms
from tenants.portal.views import team_context, team_or_404

logger = logging.getLogger(__name__)
VIA = "portal"


def managed_membership_or_404(user: AbstractBaseUser, membership_id: int) -> Membership:
    """A membership of a team the user sees (else 404) and manages (else 403)."""
    membership = get_object_or_404(
        permissions.visible_memberships(user).select_related("team__tenant", "user"),
        pk=membership_id,
    )
    if not permissions.can_manage_team(user, membership.team):
        raise PermissionDenied("Only the team's owners can change its members.")
    return membership


@login_required
@require_http_methods(["GET", "POST"])
def member_list(request: HttpRequest, team_id: int) -> HttpResponse:
    """Members and their roles; owners add people here (POST)."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    team = team_or_404(user, team_id)
    context = team_context(user, team, "members")
    form = forms.MemberAddForm(request.POST or None, team=team, actor=user)
    if request.method == "POST":
        if not context["can_manage_members"]:
            raise PermissionDenied("Only the team's owners can add members.")
        if form.is_valid():
            added = services.membership_add(team=team, user=form.cleaned_data["user"], role=form.cleaned_data["role"])
            logger.info("Team member added in the portal", extra={"membership_id": added.pk, "user_id": user.pk})
            audit_log(user, added, "add", f"Added {added.user.get_username()} as {added.role}.", via=VIA)
            role = added.get_role_display().lower()
            messages.success(request, f"{added.user.get_username()} is now {role} of {team.name}.")
            return redirect("portal:member_list", team_id=team.pk)
    members = team.memberships.select_related("user").order_by("role", "user__username")
    context |= {
        "members": members,
        "form": form,
        "roles": Membership.Role.choices,
        "owner_count": sum(1 for m in members if m.role == Membership.Role.OWNER),
    }
    return render(request, "portal/member_list.html", context)


@login_required
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Change a member's role; the last owner cannot step down."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    membership = managed_membership_or_404(user, membership_id)
    form = forms.MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
    else:
        before = membership.role
        try:
            services.membership_change_role(membership=membership, role=form.cleaned_data["role"])
        except services.LastOwnerError as exc:
            messages.error(request, str(exc))
        else:
            message = f"Changed role: {before!r} → {membership.role!r}."
            audit_log(user, membership, "change", message, via=VIA)
            messages.success(
                request, f"{membership.user.get_username()} is now {membership.get_role_display().lower()}."
            )
    return redirect("portal:member_list", team_id=membership.team_id)


@login_required
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Confirm (GET) and remove (POST) a member; the last owner cannot be removed."""
    user: AbstractBaseUser = request.user  # type: ignore[assignment]
    membership = managed_membership_or_404(user, membership_id)
    team = membership.team
    if request.method == "POST":
        try:
            with transaction.atomic():  # the entry needs the row's id: write it first, undone with a refusal
                audit_log(user, membership, "delete", f"Removed {membership.user.get_username()}.", via=VIA)
                services.membership_remove(membership=membership)
        except services.LastOwnerError as exc:
            messages.error(request, str(exc))
            return redirect("portal:member_list", team_id=team.pk)
        messages.success(request, f"{membership.user.get_username()} is no longer a member of {team.name}.")
        if not permissions.visible_teams(user).filter(pk=team.pk).exists():
            return redirect("portal:team_list")  # removed themselves
        return redirect("portal:member_list", team_id=team.pk)
    context = team_context(user, team, "members") | {"membership": membership}
    return render(request, "portal/member_remove.html", context)

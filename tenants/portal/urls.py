"""URLs of the team self-service portal, mounted at ``/portal/``."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from tenants.portal import forms, member_views, views

app_name = "portal"

urlpatterns = [
    path("", views.team_list, name="team_list"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/<int:team_id>/", views.key_list, name="key_list"),
    path("teams/<int:team_id>/keys/new/", views.key_create, name="key_create"),
    path("teams/<int:team_id>/usage/", views.usage, name="usage"),
    path("teams/<int:team_id>/members/", member_views.member_list, name="member_list"),
    path("keys/<int:key_id>/rotate/", views.key_rotate, name="key_rotate"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
    path("members/<int:membership_id>/role/", member_views.member_role, name="member_role"),
    path("members/<int:membership_id>/remove/", member_views.member_remove, name="member_remove"),
    # The portal's own look for Django's password change (the admin keeps its own pages).
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(
            form_class=forms.PasswordChangeForm,
            template_name="portal/password_change.html",
            success_url=reverse_lazy("portal:password_change_done"),
        ),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="portal/password_change_done.html"),
        name="password_change_done",
    ),
]

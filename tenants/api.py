"""Management API for tenants, teams, members, API keys and personal tokens (``/api/``).

Each viewset is an interface over ``tenants.permissions`` (the rules the admin
and the portal use too) and ``tenants.services``: reads return only the rows
the user may see (another tenant's id is a 404, never a 403), writes also need
the object-level rule (``may_change``), and every write is recorded with
``tenants.audit.audit_log`` so it shows in the object's admin history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import permissions, services, tokens
from tenants.api_filters import ApiKeyFilter, MembershipFilter, TeamFilter, TenantFilter
from tenants.audit import audit_log, changed_fields_message
from tenants.models import ApiKey, Membership, PersonalToken, Team, Tenant
from tenants.serializers import (
    ApiKeyCreateSerializer,
    ApiKeyRotateSerializer,
    ApiKeySerializer,
    MembershipSerializer,
    PersonalTokenCreateSerializer,
    PersonalTokenSerializer,
    TeamSerializer,
    TenantSerializer,
)

VIA = "API"


class RoleRules(BasePermission):
    """Create needs ``view.may_create(user)``; update and delete need ``view.may_change(user, obj)``."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return view.action != "create" or view.may_create(request.user)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return request.method in SAFE_METHODS or view.may_change(request.user, obj)


class ScopedMixin(viewsets.GenericViewSet):
    """Viewset behaviour over the rows ``visible(user)`` returns, with role rules and an audit trail for writes.

    It comes first in the bases so its ``perform_*`` wrap DRF's mixins.
    """

    permission_classes = [IsAuthenticated, RoleRules]
    #: Serializer fields whose choices are scoped to the user: field name → method name returning a queryset.
    scoped_choices: dict[str, str] = {}

    def visible(self, user: Any) -> QuerySet:
        raise NotImplementedError

    def may_create(self, user: Any) -> bool:
        return True

    def may_change(self, user: Any, obj: Any) -> bool:
        return False

    def get_queryset(self) -> QuerySet:
        return self.visible(self.request.user)

    def get_serializer(self, *args: Any, **kwargs: Any) -> serializers.BaseSerializer:
        serializer = super().get_serializer(*args, **kwargs)
        fields = getattr(serializer, "fields", {})
        for name, method in self.scoped_choices.items():
            if name in fields and not fields[name].read_only:
                fields[name].queryset = getattr(self, method)(self.request.user)
        return serializer

    def audit(self, obj: Any, verb: str, message: str) -> None:
        audit_log(self.request.user, obj, verb, message, via=VIA)  # type: ignore[arg-type]

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        obj = serializer.save()
        self.audit(obj, "add", "Created.")

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        before = {name: getattr(serializer.instance, name) for name in serializer.validated_data}  # type: ignore[union-attr]
        obj = serializer.save()
        changes = {n: (old, getattr(obj, n)) for n, old in before.items() if getattr(obj, n) != old}
        self.audit(obj, "change", changed_fields_message(changes))

    def perform_destroy(self, instance: Any) -> None:
        self.audit(instance, "delete", "Deleted.")
        instance.delete()


class ScopedViewSet(
    ScopedMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
):
    """Create, read, update, delete and list, all scoped (see ``ScopedMixin``)."""


class TenantViewSet(ScopedViewSet):
    """Tenants: superusers create, change and delete them; tenant admins read their own."""

    serializer_class = TenantSerializer
    filterset_class = TenantFilter
    search_fields = ("slug", "name")
    ordering_fields = ("slug", "name", "created_at")

    def visible(self, user: Any) -> QuerySet[Tenant]:
        return permissions.administered_tenants(user).order_by("slug")

    def may_create(self, user: Any) -> bool:
        return bool(user.is_superuser)

    def may_change(self, user: Any, obj: Tenant) -> bool:
        return bool(user.is_superuser)


class TeamViewSet(ScopedViewSet):
    """Teams: members read theirs; tenant admins create, rename and delete teams of their tenants."""

    serializer_class = TeamSerializer
    filterset_class = TeamFilter
    search_fields = ("slug", "name")
    ordering_fields = ("slug", "name", "created_at")
    scoped_choices = {"tenant": "administered_tenants"}

    def administered_tenants(self, user: Any) -> QuerySet[Tenant]:
        return permissions.administered_tenants(user)

    def visible(self, user: Any) -> QuerySet[Team]:
        return permissions.visible_teams(user).select_related("tenant").order_by("tenant__slug", "slug")

    def may_create(self, user: Any) -> bool:
        return permissions.administered_tenants(user).exists()

    def may_change(self, user: Any, obj: Team) -> bool:
        return permissions.can_administer_tenant(user, obj.tenant)


class MembershipViewSet(ScopedViewSet):
    """Members of teams: members read their teams' rosters; owners and tenant admins manage them."""

    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter
    search_fields = ("user__username", "team__slug", "team__name")
    ordering_fields = ("created_at", "role")
    scoped_choices = {"team": "managed_teams"}

    def managed_teams(self, user: Any) -> QuerySet[Team]:
        return permissions.managed_teams(user)

    def visible(self, user: Any) -> QuerySet[Membership]:
        return permissions.visible_memberships(user).select_related("user", "team").order_by("team_id", "id")

    def may_create(self, user: Any) -> bool:
        return permissions.managed_teams(user).exists()

    def may_change(self, user: Any, obj: Membership) -> bool:
        return permissions.can_manage_team(user, obj.team)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data  # type: ignore[union-attr]
        if Membership.objects.filter(team=data["team"], user=data["user"]).exists():
            raise serializers.ValidationError({"user": ["This user is already a member of the team."]})
        serializer.instance = services.membership_add(
            team=data["team"], user=data["user"], role=data.get("role", Membership.Role.MEMBER)
        )
        self.audit(serializer.instance, "add", f"Added {data['user']} as {serializer.instance.role}.")

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        membership: Membership = serializer.instance  # type: ignore[assignment]
        old_role, role = membership.role, serializer.validated_data.get("role", membership.role)  # type: ignore[union-attr]
        try:
            services.membership_change_role(membership=membership, role=role)
        except services.LastOwnerError as exc:
            raise serializers.ValidationError({"role": [str(exc)]}) from exc
        self.audit(membership, "change", changed_fields_message({"role": (old_role, role)} if old_role != role else {}))

    def perform_destroy(self, instance: Membership) -> None:
        with transaction.atomic():
            self.audit(instance, "delete", f"Removed {instance.user} from {instance.team}.")
            try:
                services.membership_remove(membership=instance)
            except services.LastOwnerError as exc:
                raise serializers.ValidationError({"role": [str(exc)]}) from exc


class ApiKeyViewSet(ScopedViewSet):
    """API keys: the secret is in the create (and rotate) answer only; DELETE revokes."""

    serializer_class = ApiKeySerializer
    filterset_class = ApiKeyFilter
    search_fields = ("name", "prefix")
    ordering_fields = ("created_at", "last_used_at", "name", "expires_at")
    scoped_choices = {"team": "teams_for_new_keys"}

    def teams_for_new_keys(self, user: Any) -> QuerySet[Team]:
        return permissions.visible_teams(user)  # the teams where ``can_create_key`` holds

    def visible(self, user: Any) -> QuerySet[ApiKey]:
        return permissions.visible_keys(user).select_related("team", "created_by").order_by("-created_at", "-id")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return ApiKeyCreateSerializer if self.action == "create" else ApiKeySerializer

    def may_create(self, user: Any) -> bool:
        return permissions.visible_teams(user).exists()

    def may_change(self, user: Any, obj: ApiKey) -> bool:
        return permissions.can_manage_key(user, obj)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = dict(serializer.validated_data)  # type: ignore[union-attr]
        issued = services.api_key_create(created_by=self.request.user, **data)  # type: ignore[arg-type]
        issued.api_key.secret = issued.secret  # type: ignore[attr-defined]  # serialised once, never stored
        serializer.instance = issued.api_key
        self.audit(issued.api_key, "add", "Created the key.")

    def perform_destroy(self, instance: ApiKey) -> None:
        services.api_key_revoke(api_key=instance)
        self.audit(instance, "change", "Revoked the key.")

    @extend_schema(summary="Revoke a key", description="The key is refused from the next request on; it is kept.")
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    @extend_schema(request=ApiKeyRotateSerializer, responses={201: ApiKeyCreateSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        """Issue a new key with the same settings; the old one works for ``grace_seconds`` more."""
        key = self.get_object()
        if not self.may_change(request.user, key):
            self.permission_denied(request, message=RoleRules.message)
        params = ApiKeyRotateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            issued = services.api_key_rotate(
                api_key=key, grace=timedelta(seconds=params.validated_data["grace_seconds"])
            )
        except services.RotateError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc
        self.audit(key, "change", f"Rotated the key (grace {params.validated_data['grace_seconds']} s).")
        self.audit(issued.api_key, "add", f"Created by rotating key {key.pk}.")
        issued.api_key.secret = issued.secret  # type: ignore[attr-defined]
        return Response(ApiKeyCreateSerializer(issued.api_key).data, status=status.HTTP_201_CREATED)


class PersonalTokenViewSet(
    ScopedMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
):
    """Your own management-API tokens. Creating one needs a signed-in session, not another token."""

    serializer_class = PersonalTokenSerializer
    ordering_fields = ("created_at", "last_used_at", "name")
    search_fields = ("name", "prefix")

    def visible(self, user: Any) -> QuerySet[PersonalToken]:
        return PersonalToken.objects.filter(user=user.pk).order_by("-created_at", "-id")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return PersonalTokenCreateSerializer if self.action == "create" else PersonalTokenSerializer

    def may_create(self, user: Any) -> bool:
        # A leaked token must not be able to mint its own successors.
        return not isinstance(self.request.auth, PersonalToken)

    def may_change(self, user: Any, obj: PersonalToken) -> bool:
        return obj.user_id == user.pk

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data  # type: ignore[union-attr]
        issued = tokens.personal_token_create(
            user=self.request.user, name=data["name"], expires_at=data.get("expires_at")
        )  # type: ignore[arg-type]
        issued.token.secret = issued.secret  # type: ignore[attr-defined]
        serializer.instance = issued.token
        self.audit(issued.token, "add", "Created a personal API token.")

    def perform_destroy(self, instance: PersonalToken) -> None:
        tokens.personal_token_revoke(token=instance)
        self.audit(instance, "change", "Revoked the token.")


ROUTES: list[tuple[str, type[viewsets.GenericViewSet], str]] = [
    ("tenants", TenantViewSet, "tenant"),
    ("teams", TeamViewSet, "team"),
    ("members", MembershipViewSet, "membership"),
    ("keys", ApiKeyViewSet, "apikey"),
    ("tokens", PersonalTokenViewSet, "personaltoken"),
]

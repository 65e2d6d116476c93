"""Serializers of the management API for tenants, teams, members, API keys and personal tokens.

Choice fields that point at other rows (a key's team, a team's tenant) are given
the requesting user's scoped queryset by the viewset, so an id the user may not
see fails validation exactly like an id that does not exist.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import available_timezones

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import permissions
from tenants.models import ApiKey, Membership, PersonalToken, Team, Tenant

KEY_STATUSES = [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]


def key_status(revoked_at: Any, expires_at: Any) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= timezone.now():
        return "expired"
    return "active"


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ("id", "slug", "name", "status", "timezone", "rpm_limit", "tpm_limit", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")

    def validate_timezone(self, value: str) -> str:
        if value not in available_timezones():
            raise serializers.ValidationError("Not an IANA time zone name (e.g. Europe/Berlin).")
        return value


class TeamSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(queryset=Tenant.objects.none())

    class Meta:
        model = Team
        fields = ("id", "tenant", "slug", "name", "rpm_limit", "tpm_limit", "created_at")
        read_only_fields = ("created_at",)
        validators: list[Any] = []  # (tenant, slug) uniqueness is checked in validate(), tenant being fixed on update

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["tenant"].read_only = True  # a team never moves between tenants

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tenant = attrs.get("tenant") or getattr(self.instance, "tenant", None)
        slug = attrs.get("slug")
        if tenant is not None and slug is not None:
            clash = Team.objects.filter(tenant=tenant, slug=slug)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError({"slug": "This tenant already has a team with this slug."})
        return attrs


class MemberNameField(serializers.CharField):
    """A member by username: shown as the username; resolved in ``validate`` among the people one may add."""

    def to_representation(self, value: Any) -> str:
        return str(value.get_username()) if hasattr(value, "get_username") else str(value)


class MembershipSerializer(serializers.ModelSerializer):
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.none())
    user = MemberNameField(
        max_length=150,
        help_text="The member's username: a person of the team's tenant (platform admins: any account).",
    )

    class Meta:
        model = Membership
        fields = ("id", "team", "user", "role", "created_at")
        read_only_fields = ("created_at",)
        validators: list[Any] = []  # duplicates are reported by the viewset, with a clearer message

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["team"].read_only = True  # change the role; to move someone, add and remove
            self.fields["user"].read_only = True

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        name, team = attrs.get("user"), attrs.get("team")
        if isinstance(name, str) and team is not None:
            request = self.context.get("request")
            found = None
            if request is not None:
                found = permissions.addable_users(request.user, [team.tenant_id]).filter(username=name).first()
            if found is None:  # no account, or one outside the tenant: the same answer
                raise serializers.ValidationError({"user": [permissions.NOT_ADDABLE]})
            attrs["user"] = found
        return attrs


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as lists and details show it: never its secret or hash."""

    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.none())
    tenant = serializers.IntegerField(source="team.tenant_id", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    status = serializers.SerializerMethodField()
    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Model and tier names this key may use; empty means everything the team may use.",
    )

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "id",
            "team",
            "tenant",
            "name",
            "prefix",
            "status",
            "created_by",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "allowed_models",
            "rpm_limit",
            "tpm_limit",
        )
        read_only_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["team"].read_only = True

    @extend_schema_field(serializers.ChoiceField(choices=KEY_STATUSES))
    def get_status(self, obj: ApiKey) -> str:
        return key_status(obj.revoked_at, obj.expires_at)

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Give the key a name.")
        return value.strip()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        team: Team = attrs.get("team") or self.instance.team  # type: ignore[union-attr]
        _check_within_team(team, attrs)
        return attrs


def _check_within_team(team: Team, attrs: dict[str, Any]) -> None:
    """The portal's rules: model access, limits and budget within the team's."""
    from tenants.portal.forms import team_budget_cap, team_limit
    from tenants.portal.queries import model_choices

    errors: dict[str, str] = {}
    if attrs.get("allowed_models"):
        known = {name for _, options in model_choices(team) for name, _ in options}
        unknown = sorted(set(attrs["allowed_models"]) - known)
        if unknown:
            errors["allowed_models"] = f"Not a model or tier this team may use: {', '.join(unknown)}."
    for field in ("rpm_limit", "tpm_limit"):
        cap = team_limit(team, field)
        if cap is not None and attrs.get(field) is not None and attrs[field] > cap:
            errors[field] = f"Must not exceed the team's limit ({cap})."
    budget = attrs.get("budget_usd")
    if budget is not None:
        cap_usd = team_budget_cap(team)
        if cap_usd is not None and budget > cap_usd:
            errors["budget_usd"] = f"Must not exceed the team's budget ({cap_usd})."
    if errors:
        raise serializers.ValidationError(errors)


class ApiKeyCreateSerializer(ApiKeySerializer):
    """Creation: adds an optional monthly budget; the answer carries the secret, once."""

    secret = serializers.CharField(read_only=True, help_text="The key itself. Shown only in this response.")
    budget_usd = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        write_only=True,
        help_text="Optional monthly budget of the key, in USD.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "secret", "budget_usd")


class ApiKeyRotateSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0,
        max_value=30 * 24 * 3600,
        default=0,
        help_text="How long the old key keeps working; 0 revokes it now.",
    )


class PersonalTokenSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = PersonalToken
        fields: tuple[str, ...] = (
            "id",
            "name",
            "prefix",
            "status",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        )
        read_only_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    @extend_schema_field(serializers.ChoiceField(choices=KEY_STATUSES))
    def get_status(self, obj: PersonalToken) -> str:
        return key_status(obj.revoked_at, obj.expires_at)


class PersonalTokenCreateSerializer(PersonalTokenSerializer):
    secret = serializers.CharField(read_only=True, help_text="The token itself. Shown only in this response.")

    class Meta(PersonalTokenSerializer.Meta):
        fields = (*PersonalTokenSerializer.Meta.fields, "secret")
